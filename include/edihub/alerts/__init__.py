"""Alerts for the integration team (table ``edi.alert``, migration 0016).

- ``store``: one open alert per condition (kind, key): opened, refreshed, closed when it
  clears, each opening and closing audited in the same transaction;
- ``checks``: the four conditions the ``alerts`` DAG looks for (a daily sender gone quiet, an
  insurer not pulling its files, a feed's rejection rate jumping, an export late);
- ``mail``: the integration team's e-mail of newly opened alerts, over the hub's SMTP relay;
- ``tasks``: what Airflow calls: every task's failure and success callbacks
  (``dag_factory.DEFAULT_ARGS``) and the alerts DAG's tasks.

Nothing heavy is imported here: ``dag_factory`` imports ``tasks`` when a DAG file is parsed.
"""

# The alerts DAG's checks, one task each (named here so that the DAG file imports nothing).
CHECKS = ("sender_silent", "insurer_not_pulling", "rejection_jump", "export_late")
