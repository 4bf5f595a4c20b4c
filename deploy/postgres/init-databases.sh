#!/bin/bash
# Run once by the postgres image on an empty data folder (/docker-entrypoint-initdb.d):
# Airflow's metadata and the hub's data in two databases of one server, each owned by a role
# of its own, so neither component can read or alter the other's tables.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v edihub_pw="$EDIHUB_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE ROLE edihub LOGIN PASSWORD :'edihub_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE edihub OWNER edihub;
REVOKE ALL ON DATABASE airflow, edihub FROM PUBLIC;
SQL
