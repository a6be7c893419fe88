# One image for every process of docker-compose.yml: the campaignopt CLI and API, the Airflow 3
# components and Celery workers, MLflow. Installs the runtime lock only (no test or lint tools).
FROM python:3.11-slim
WORKDIR /opt/campaignopt
COPY requirements-runtime.txt ./
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -r requirements-runtime.txt
COPY . .
# Editable: the code reads the project files at the checkout's root (dags/, dbt/, expectations/,
# campaigns/, benchmarks/scenarios/) next to its packages; see README, "Packaging".
RUN uv pip install --system --no-cache --no-deps -e .
ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/campaignopt/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    CAMPAIGNOPT_HOME=/data
