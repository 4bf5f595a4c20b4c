"""The KPI dashboard: the brochure's figures computed from the hub's own tables (the ``kpi``
views of migration 0012). figures.py reads them into tiles and chart data beside the
brochure's figures, charts.py draws inline SVG, report.py writes the HTML and the JSON."""
