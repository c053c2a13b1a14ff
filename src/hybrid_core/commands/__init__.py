"""CLI subcommands, one module each. Every module here exposes ``command`` (a click command
or group); :mod:`hybrid_core.cli` adds them all to the ``hybrid`` group."""
