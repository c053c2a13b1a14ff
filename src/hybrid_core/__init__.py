"""hybrid: a pluggable trading framework for S&P 500 equities and crypto.

The public surface for plugin authors is :data:`hookimpl` and the base classes in
:mod:`hybrid_core.contracts`.
"""

__version__ = "0.1.0"

from .hookspecs import hookimpl  # noqa: E402

__all__ = ["__version__", "hookimpl"]
