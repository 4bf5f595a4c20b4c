"""Great Expectations' Data Docs of the data contracts: the suites under contracts/, as each
kind of file is checked against them (a document's suites with what its version shares),
rendered by GX itself into a static site. GX stays the language the contracts are read in,
whichever engine runs them."""

from __future__ import annotations

import logging
from pathlib import Path

from edihub.contracts.engine import DataContract, contract_folders

SITE = "contracts"


def suite_name(contracts_dir: Path, folder: Path, table: str) -> str:
    """``fse.v2.care_sheet.act``: GX files the page as expectations/fse/v2/care_sheet/act.html."""
    return ".".join([*folder.relative_to(contracts_dir).parts, table])


def write_data_docs(contracts_dir: Path, out: Path) -> Path:
    """Build the site in ``out`` (pages of suites no longer there are left); returns its
    index.html."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.add_data_docs_site(
        site_name=SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(out),
            },
        },
    )
    for folder in contract_folders(contracts_dir):
        contract = DataContract.load(folder)
        for table, suite in contract.suites.items():
            context.suites.add(
                gx.ExpectationSuite(
                    name=suite_name(contracts_dir, folder, table),
                    expectations=suite["expectations"],
                    meta=suite.get("meta"),
                )
            )
    context.build_data_docs(site_names=[SITE])
    return out / "index.html"
