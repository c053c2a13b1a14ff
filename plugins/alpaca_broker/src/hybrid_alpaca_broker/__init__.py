"""Alpaca for hybrid: a broker (paper and live) and a daily-bar data source over alpaca-py."""

__version__ = "0.1.0"
