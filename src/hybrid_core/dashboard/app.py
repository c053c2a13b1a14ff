"""Streamlit entry script: ``streamlit run app.py -- --trades trades.csv --health FILE``."""

import sys

from hybrid_core.dashboard.options import parse_options
from hybrid_core.dashboard.page import render

render(parse_options(sys.argv[1:]))
