"""The Streamlit dashboard: ``hybrid dashboard`` or ``streamlit run app.py -- --trades ...``.

Every trading number on the page comes from :mod:`hybrid_core.ops.report`."""
