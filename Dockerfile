# One image for the Airflow scheduler/API server and the campaignopt CLI.
FROM python:3.11-slim
WORKDIR /opt/campaignopt
COPY requirements.txt pyproject.toml README.md ./
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -r requirements.txt
COPY . .
RUN uv pip install --system --no-deps -e .
ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/campaignopt/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    CAMPAIGNOPT_HOME=/data
