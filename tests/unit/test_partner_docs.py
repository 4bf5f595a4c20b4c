"""The partner documentation in docs/formats/ is the generator's output for the current contracts:
it names every rule, every refusal code the engines raise, and its examples pass the hub."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edihub.config import Settings
from edihub.feeds import FEEDS
from edihub.formats.contract import feed_formats
from edihub.partner_docs import EXAMPLES, refusal_codes, render_all, rule_ids
from edihub.validation import check_file

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "formats"
REGENERATE = "docs/formats is out of date with the contracts: run `edihub docs formats`"
# ```xml / ```text blocks of the example sections
EXAMPLE_BLOCK = re.compile(r"^A valid file of two records, `([^`]+)`.*?\n\n```\w+\n(.*?)\n```$",
                           re.M | re.S)  # fmt: skip


def _page(feed: str) -> str:
    return (DOCS / f"{feed}.md").read_text(encoding="utf-8")


def test_committed_docs_are_the_generator_output(tmp_path: Path) -> None:
    written = render_all(tmp_path)
    assert {p.name for p in written} == {f"{feed}.md" for feed in FEEDS} | {
        "README.md",
        "exports.md",
    }
    committed = {p.name for p in DOCS.glob("*.md")}
    assert committed == {p.name for p in written}, REGENERATE
    for path in written:
        fresh = path.read_text(encoding="utf-8")
        assert (DOCS / path.name).read_text(encoding="utf-8") == fresh, (
            f"{REGENERATE} ({path.name} differs)"
        )


def test_every_rule_of_the_contracts_is_documented() -> None:
    contracts = Settings.from_env().contracts_dir
    feeds = sorted(p.name for p in contracts.iterdir() if p.is_dir())
    assert set(feeds) <= set(FEEDS), "a contracts/ folder for a feed not in edihub.feeds"
    for feed in feeds:
        ids = rule_ids(contracts, feed)
        assert ids, feed
        page = _page(feed)
        missing = [rule for rule in ids if f"**{rule}**" not in page]
        assert not missing, f"{feed}: rules {missing} not in the docs; {REGENERATE}"


def _raised_codes(module: Path) -> set[str]:
    """Codes the module refuses files with, as written in its source."""
    text = module.read_text(encoding="utf-8")
    return set(
        re.findall(r'FileRefused\(\s*"([A-Z_]+)"', text)
        + re.findall(r'file_error\(\s*"([A-Z_]+)"', text)
        + re.findall(r'_quarantine_row\([^"]*"([A-Z_]+)"', text)
        + re.findall(r'reason_code\s*=\s*"([A-Z_]+)"', text)
    )


@pytest.mark.parametrize(
    ("family", "modules"),
    [
        ("xml", ["formats/xml_engine.py", "collect.py", "validation.py"]),
        ("fixed_width", ["formats/fixed_width.py", "collect.py", "validation.py"]),
        ("csv", ["formats/csv_engine.py", "collect.py", "validation.py"]),
    ],
)
def test_every_refusal_code_the_hub_raises_is_documented(family: str, modules: list[str]) -> None:
    raised = set().union(*(_raised_codes(ROOT / "include" / "edihub" / m) for m in modules))
    assert raised, "no codes found: did the engines' source change shape?"
    assert raised <= set(refusal_codes(family)), sorted(raised - set(refusal_codes(family)))
    for feed in FEEDS:
        if feed_formats(Settings.from_env().formats_dir, feed)[0].family == family:
            page = _page(feed)
            assert all(f"`{code}`" in page for code in raised), REGENERATE


def test_every_version_has_an_example() -> None:
    formats = Settings.from_env().formats_dir
    for feed in FEEDS:
        for fmt in feed_formats(formats, feed):
            assert fmt.label in EXAMPLES, f"no example writer for {fmt.label}"


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_the_embedded_examples_are_loaded_by_the_hub(
    feed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The examples carry fixed dates so that the docs do not change every day; widen the
    # care window so that they stay inside it whatever day the tests run.
    monkeypatch.setenv("EDIHUB_CARE_WINDOW_DAYS", "36500")
    monkeypatch.setenv("EDIHUB_DECLARATION_WINDOW_DAYS", "36500")
    examples = EXAMPLE_BLOCK.findall(_page(feed))
    assert len(examples) == len(feed_formats(Settings.from_env().formats_dir, feed))
    for name, text in examples:
        path = tmp_path / name
        path.write_text(text + "\n", encoding="utf-8", newline="\n")
        # registry snapshots carry no sender: they come from the core systems' account
        account = Settings.from_env().registry_senders[0] if feed == "registry" else None
        verdict, errors = check_file(path, Settings.from_env(), feed, account, None)
        assert verdict.state == "loaded", (verdict, errors)
        assert verdict.records_total == 2
        assert errors == []


def test_the_insurers_page_lists_every_export_column() -> None:
    from edihub.exports.files import export_contract

    page = (DOCS / "exports.md").read_text(encoding="utf-8")
    for name in export_contract().columns:
        assert f"| `{name}` |" in page, name
