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
