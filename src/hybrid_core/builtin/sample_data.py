"""The ``sample`` data source: the bars bundled with hybrid-core (see :mod:`hybrid_core.sample`).

For trying a profile or a plugin anywhere hybrid-core is installed, with no data files of one's
own: 40 S&P 500 equities and BTC/USD, ETH/USD, 2020-01-02..2021-04-21. It reads the bundled file
exactly as the ``local`` source reads any file.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ..hookspecs import hookimpl
from ..sample import bars_path
from .local_data import LocalBars


class SampleBars(LocalBars):
    """The sample bundled with hybrid: 40 S&P 500 equities + BTC/USD, ETH/USD, 2020-01-02..2021-04-21."""

    name = "sample"

    @attrs.define(kw_only=True)
    class Params:  # type: ignore[no-redef]
        """No parameters: the file is part of hybrid-core."""

    def files(self) -> list[Path]:
        """The bundled bar file."""
        return [bars_path()]


@hookimpl
def hybrid_register_data_sources(register):  # type: ignore[no-untyped-def]
    """Register the ``sample`` data source."""
    register(SampleBars)
