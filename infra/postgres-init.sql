-- Databases for the MLflow and Prefect servers in docker-compose.yml.
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
