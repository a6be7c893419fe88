-- MLflow and Airflow keep their metadata in their own databases on the same server.
CREATE DATABASE mlflow OWNER campaignopt;
CREATE DATABASE airflow OWNER campaignopt;
