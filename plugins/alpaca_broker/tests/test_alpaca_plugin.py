"""The plugin registers through the entry point; the server runs from the command line."""

from __future__ import annotations

import subprocess
import sys

import attrs
import pytest
import requests

from hybrid_core.plugins import build_plugin_host


def test_entry_point_registers_broker_and_data_source():
    host = build_plugin_host()
    assert not [e for e in host.errors if e.name == "alpaca"]
    broker = host.registry.get("broker", "alpaca")
    data = host.registry.get("data_source", "alpaca")
    assert (broker.plugin, broker.package) == ("alpaca", "hybrid-alpaca-broker")
    assert data.factory.__name__ == "AlpacaDataSource"
    assert {"equity_when_closed", "base_url", "timeout"} <= set(attrs.fields_dict(broker.params_cls))


def test_server_runs_as_a_module_with_control_endpoints():
    proc = subprocess.Popen([sys.executable, "-m", "hybrid_alpaca_broker.testing.server", "--port", "0",
                             "--market", "closed"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        headers = {"APCA-API-KEY-ID": "PK1", "APCA-API-SECRET-KEY": "s"}
        assert requests.get(f"{url}/v2/clock", headers=headers, timeout=5).json()["is_open"] is False
        requests.post(f"{url}/_control/clock", json={"is_open": True}, timeout=5)
        assert requests.get(f"{url}/v2/clock", headers=headers, timeout=5).json()["is_open"] is True
        assert requests.get(f"{url}/v2/account", timeout=5).status_code == 401
        seen = requests.get(f"{url}/_control/requests", timeout=5).json()
        assert [p for _, p, _ in seen] == ["/v2/clock", "/v2/clock", "/v2/account"]
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_bad_params_are_one_clear_line_each(tmp_path):
    from hybrid_alpaca_broker.broker import AlpacaParams
    with pytest.raises(ValueError, match="crypto_stop_limit_offset must be between 0 and 0.5"):
        AlpacaParams(crypto_stop_limit_offset=1.0)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        AlpacaParams(timeout=0)
    with pytest.raises(ValueError, match="equity_when_closed"):
        AlpacaParams(equity_when_closed="later")  # type: ignore[arg-type]
