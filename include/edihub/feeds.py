"""The inbound feeds the hub collects: one collect DAG, one formats/ and one contracts/ folder
each. Adding a feed is an entry here plus its contract files."""

FEEDS = {
    "fse": "electronic care sheets (FSE) and the other messages of doctors' and dentists' "
    "software: work stoppages, exemption and invalidity requests, dental prior approvals (XML)",
    "pharmacy": "invoices of the teletransmitting pharmacies (fixed-width, B2/NOEMIE style)",
    "payroll": "employers' monthly salary declarations, in the style of the CSM's DSM 2.0 (XML)",
    "registry": "snapshots of the funds' registries: insured, cards, insurers, practitioners, "
    "pharmacies, employers (CSV)",
}

# Feeds whose file names say part of what the file is: a registry snapshot's date is in its
# name, not in its bytes. The same bytes under another name (a document unchanged since the
# day before, or back to an earlier content) are another file, not a duplicate.
NAME_IS_CONTENT = frozenset({"registry"})
