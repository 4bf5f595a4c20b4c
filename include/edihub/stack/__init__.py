"""The embedded stack: PostgreSQL from a wheel, the in-process SFTP server, Airflow standalone."""
