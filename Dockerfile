# Airflow 3.3 image with subsidy-ledger installed from the pinned requirements.txt.
# The Data Docs pages' static files (Bootstrap, jQuery, Font Awesome, Vega ...) come from the npm registry at
# the versions package-lock.json pins, so the pages work on a network without internet.
FROM node:20-bookworm-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM apache/airflow:3.3.2-python3.11
USER airflow
COPY --chown=airflow:root requirements.txt /opt/subsidy-ledger/requirements.txt
RUN pip install --no-cache-dir -r /opt/subsidy-ledger/requirements.txt
COPY --chown=airflow:root pyproject.toml /opt/subsidy-ledger/pyproject.toml
COPY --chown=airflow:root include /opt/subsidy-ledger/include
COPY --chown=airflow:root expectations /opt/subsidy-ledger/expectations
RUN pip install --no-cache-dir --no-deps -e /opt/subsidy-ledger
COPY --from=assets --chown=airflow:root /assets/node_modules /opt/subsidy-ledger/node_modules
ENV SUBSIDY_LEDGER_EXPECTATIONS=/opt/subsidy-ledger/expectations
