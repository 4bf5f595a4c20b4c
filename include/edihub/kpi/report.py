"""The KPI dashboard as one self-contained HTML file (inline CSS and SVG: it can be mailed and
opened offline) and as JSON; the Airflow page shows the same HTML (``fragment``), wrapped."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from html import escape
from pathlib import Path
from typing import Any

from edihub.kpi.charts import svg
from edihub.kpi.figures import Dashboard, Reference, Tile, read_dashboard
from edihub.load.db import connect

TITLE = "EDI hub: the brochure's figures"

# Scoped under .edihub-kpi so the page can sit inside another document.
_CSS = """
.edihub-kpi{font:14px/1.4 system-ui,sans-serif;color:#1f2933;max-width:1340px}
.edihub-kpi h1{margin:0 0 .2rem;font-size:1.6rem}
.edihub-kpi .sub{margin:0 0 1.2rem;color:#616e7c}
.edihub-kpi h2{font-size:1.1rem;margin:1.4rem 0 .6rem;color:#323f4b}
.edihub-kpi .tiles{
  display:grid;
  grid-template-columns:repeat(auto-fill,minmax(15.5rem,1fr));
  gap:.8rem}
.edihub-kpi .tile{
  border:1px solid #e4e7eb;
  border-top:4px solid #0072B2;
  border-radius:.4rem;
  padding:.7rem .9rem;
  background:#fff}
.edihub-kpi .tile h3{margin:0;font-size:.9rem;font-weight:600;color:#3e4c59}
.edihub-kpi .big{font-size:2rem;font-weight:700;font-variant-numeric:tabular-nums;margin:.15rem 0 0}
.edihub-kpi .big small{font-size:.95rem;font-weight:400;color:#616e7c}
.edihub-kpi .ratio{font-weight:600;color:#0072B2}
.edihub-kpi .note{color:#616e7c;font-size:.85rem}
.edihub-kpi .def{font-size:.8rem;color:#52606d;margin:.4rem 0}
.edihub-kpi .ref{
  font-size:.8rem;
  background:#f5f7fa;
  border-left:3px solid #E69F00;
  padding:.3rem .5rem;
  margin:0}
.edihub-kpi .ref b{font-variant-numeric:tabular-nums}
.edihub-kpi .ref q{display:block;font-style:italic;color:#52606d;quotes:"« " " »"}
.edihub-kpi .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(30rem,1fr));gap:1rem}
.edihub-kpi figure{
  margin:0;
  border:1px solid #e4e7eb;
  border-radius:.4rem;
  padding:.6rem;
  background:#fff}
.edihub-kpi figure svg{display:block}
"""


def _number(value: float | None, unit: str = "count") -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text} {unit}" if unit in ("employees", "days") else text


def _percent(ratio: float | None) -> str:
    return "–" if ratio is None else f"{100 * ratio:.0f} %"


def _reference(ref: Reference) -> str:
    about = "about " if ref.approximate else ""
    parts = [p for p in (ref.value is not None and _number(ref.value),
                         ref.ratio is not None and _percent(ref.ratio)) if p]  # fmt: skip
    return (f'<p class="ref">Brochure: <b>{about}{escape(" · ".join(parts))}</b>'
            f'<q lang="fr">{escape(ref.wording)}</q></p>')  # fmt: skip


def _tile(t: Tile) -> str:
    unit = t.unit if t.unit in ("employees", "days") else ""
    if t.headline == "ratio":
        big = f"{escape(_percent(t.ratio))} <small>{escape(t.ratio_of or '')}</small>"
        second = f'<div class="note">{escape(_number(t.value))}</div>'
    else:
        big = escape(_number(t.value)) + (f" <small>{escape(unit)}</small>" if unit else "")
        second = (f'<div><span class="ratio">{escape(_percent(t.ratio))}</span> '
                  f"{escape(t.ratio_of or '')}</div>" if t.ratio is not None else "")  # fmt: skip
    note = f'<div class="note">{escape(t.note)}</div>' if t.note else ""
    return (f'<article class="tile" data-key="{escape(t.key)}"><h3>{escape(t.title)}</h3>'
            f'<p class="big">{big}</p>{second}{note}<p class="def">{escape(t.definition)}</p>'
            f"{_reference(t.reference)}</article>")  # fmt: skip


def fragment(d: Dashboard) -> str:
    """The dashboard's body with its style: tiles by section, then the charts."""
    sections: dict[str, list[Tile]] = {}
    for t in d.tiles:
        sections.setdefault(t.section, []).append(t)
    as_of = f"registry of {d.as_of:%d %B %Y}" if d.as_of else "no registry snapshot loaded"
    out = [f"<style>{_CSS}</style>", '<section class="edihub-kpi">', f"<h1>{escape(TITLE)}</h1>",
           f'<p class="sub">Computed from the hub\'s own tables ({escape(as_of)}); beside each, '
           "the funds' brochure.</p>"]  # fmt: skip
    for name, tiles in sections.items():
        out.append(f'<h2>{escape(name)}</h2><div class="tiles">')
        out.extend(_tile(t) for t in tiles)
        out.append("</div>")
    out.append('<h2>Charts</h2><div class="charts">')
    out.extend(f'<figure data-chart="{escape(c.key)}">{svg(c)}</figure>' for c in d.charts)
    out.append("</div></section>")
    return "\n".join(out)


def html_document(d: Dashboard) -> str:
    """A whole HTML file: nothing fetched from anywhere."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(TITLE)}</title></head>\n"
            f"<body>\n{fragment(d)}\n</body></html>\n")  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def as_json(d: Dashboard) -> str:
    return json.dumps(dataclasses.asdict(d), default=_plain, ensure_ascii=False, indent=2)


def as_dict(d: Dashboard) -> dict[str, Any]:
    """What the JSON API returns (dates as ISO strings)."""
    result: dict[str, Any] = json.loads(as_json(d))
    return result


def write_report(dsn: str, out: Path, json_format: bool = False) -> Dashboard:
    with connect(dsn) as conn:
        d = read_dashboard(conn)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(as_json(d) + "\n" if json_format else html_document(d), encoding="utf-8")
    return d
