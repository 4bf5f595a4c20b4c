#!/bin/bash
# airflow-init (docker-compose.yaml), run as root before any other Airflow service: Airflow's
# and the hub's migrations, the UI users' passwords from the env file, and the partners'
# OpenSSH configuration from the registry for the sftp service.
set -euo pipefail
: "${AIRFLOW_UID:?}" "${AIRFLOW_ADMIN_PASSWORD:?}" "${AIRFLOW_OPERATOR_PASSWORD:?}" \
  "${AIRFLOW_MANAGEMENT_PASSWORD:?}" "${EDIHUB_DATABASE_URL:?}"
airflow version
airflow db migrate
python -m edihub.cli db migrate

# SimpleAuthManager reads the passwords of [core] simple_auth_manager_users from this file
# (it would otherwise generate them and print them in the api-server's log).
passwords=$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE
mkdir -p "$(dirname "$passwords")"
python - "$passwords" <<'PY'
import json, os, sys
users = {"admin": "ADMIN", "operator": "OPERATOR", "management": "MANAGEMENT"}
with open(sys.argv[1], "w") as fh:
    json.dump({u: os.environ[f"AIRFLOW_{v}_PASSWORD"] for u, v in users.items()}, fh)
PY
chmod 600 "$passwords"

"$(dirname "$0")/sshd-config.sh"

mkdir -p /opt/airflow/logs /opt/airflow/state
chown -R "${AIRFLOW_UID}:0" /opt/airflow/logs /opt/airflow/state "$(dirname "$passwords")"
