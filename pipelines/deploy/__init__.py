"""Running campaignopt's DAGs on a real, multi-process Airflow (CeleryExecutor) on this machine.

`airflow_cluster` starts and stops the processes; `airflow_rest` speaks to the API server.
Like `pipelines.orchestration`, nothing here imports Airflow: it starts it and asks it questions.
"""
