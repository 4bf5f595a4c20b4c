"""Pages inside the Airflow UI (mounted by plugins/edihub_plugin.py)."""
