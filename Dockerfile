# Airflow 3.3 image with subsidy-ledger installed from the pinned requirements.txt.
FROM apache/airflow:3.3.2-python3.11
USER airflow
COPY --chown=airflow:root requirements.txt /opt/subsidy-ledger/requirements.txt
RUN pip install --no-cache-dir -r /opt/subsidy-ledger/requirements.txt
COPY --chown=airflow:root pyproject.toml /opt/subsidy-ledger/pyproject.toml
COPY --chown=airflow:root include /opt/subsidy-ledger/include
COPY --chown=airflow:root expectations /opt/subsidy-ledger/expectations
RUN pip install --no-cache-dir --no-deps -e /opt/subsidy-ledger
ENV SUBSIDY_LEDGER_EXPECTATIONS=/opt/subsidy-ledger/expectations
