# hybrid trader image: hybrid-core + the equity_reversal, crypto_adx, alpaca_broker and backtrader_bridge plugins.
#   docker build -t hybrid-trader .
#   docker run -d --name hybrid --env-file /etc/hybrid/hybrid.env \
#     -v /etc/hybrid/profile.yaml:/etc/hybrid/profile.yaml:ro -v hybrid-data:/data hybrid-trader
# See docs/operations.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HYBRID_HEALTH_FILE=/tmp/hybrid_trader.health \
    HYBRID_KILL_SWITCH=/data/KILL_SWITCH

# ta-lib ships manylinux wheels with the C library bundled: no compiler needed.
WORKDIR /opt/hybrid
COPY pyproject.toml README.md ./
COPY src ./src
COPY plugins ./plugins
RUN pip install . ./plugins/equity_reversal ./plugins/crypto_adx ./plugins/alpaca_broker ./plugins/backtrader_bridge \
    && HYBRID_STRICT_PLUGINS=1 hybrid plugins \
    && useradd --create-home --uid 10001 hybrid \
    && mkdir -p /data /etc/hybrid \
    && chown hybrid:hybrid /data

USER hybrid
# State database, trade log and the kill-switch file live here (mount a volume).
WORKDIR /data
VOLUME ["/data"]

# Loop mode refreshes the heartbeat every 60 s; `hybrid health` fails after 600 s without one.
HEALTHCHECK --interval=60s --timeout=15s --start-period=180s --retries=3 CMD ["hybrid", "health"]

ENTRYPOINT ["hybrid"]
CMD ["run", "/etc/hybrid/profile.yaml", "--json-logs"]
