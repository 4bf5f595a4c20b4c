"""The collect DAGs of Airflow: collect_fse, collect_pharmacy, ... one per inbound feed.

Each is built by ``edihub.dag_factory.collect_dag``; see its docs in the Airflow UI.
"""

from edihub.dag_factory import collect_dag
from edihub.feeds import FEEDS

for _feed in FEEDS:
    globals()[f"collect_{_feed}"] = collect_dag(_feed)
