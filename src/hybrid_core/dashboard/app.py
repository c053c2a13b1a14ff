"""Streamlit entry script: ``streamlit run app.py -- --trades order_events.csv --health FILE``."""

import sys

import streamlit as st

from hybrid_core.dashboard.options import parse_options
from hybrid_core.dashboard.page import render

try:
    options = parse_options(sys.argv[1:])
except ValueError as exc:
    st.error(str(exc))
else:
    render(options)
