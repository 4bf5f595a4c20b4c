"""Per-partner overrides on the real PostgreSQL and SFTP servers: a pharmacy's own dispensing
window over its kind's over the default, recorded with the file's rule results; an insurer's
own CSV options, columns and file-name prefix, the other insurers' files as the format alone
makes them; the files in error refused naming file and key; ``edihub overrides show``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import shutil
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from edihub import cli, clock, collect, reprocess
from edihub.config import Settings
from edihub.exports.files import export_contract
from edihub.overrides import OverrideError, load
from edihub.statements import MONACO, build_statements, monaco_today
from tests.fixtures.exports import Exports, day_of_care, read_export
from tests.fixtures.fse import PRACTITIONER, fse_file, sheet
from tests.fixtures.funds import Funds
from tests.fixtures.pharmacy import PHARMACY, invoice, pharmacy_file


def _contracts(tmp: Path, files: dict[str, str]) -> Path:
    """A copy of contracts/ with these override files (path under overrides/ -> YAML)."""
    folder = tmp / "contracts"
    if not folder.exists():
        shutil.copytree(Settings.from_env().contracts_dir, folder)
    for name, text in files.items():
        path = folder / "overrides" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def test_a_pharmacys_own_window_cascades_over_its_kinds_and_is_recorded(funds: Funds) -> None:
    today = clock.monaco_today()
    contracts = _contracts(
        funds.folder, {"kind/pharmacy.yaml": "tolerances: {care_window_days: 30}"}
    )
    settings = dataclasses.replace(funds.settings, contracts_dir=contracts)

    def ingest(batch: str) -> tuple[dict, list[tuple]]:
        old = invoice(1, invoice_number=f"F{batch}1", dispensing_date=today - dt.timedelta(days=40))
        new = invoice(2, invoice_number=f"F{batch}2")
        path = pharmacy_file(funds.folder / f"{batch}.txt", [old, new], batch=batch)
        file_id = collect.ingest_local(funds.dsn, settings, "pharmacy", path, PHARMACY)
        results = funds.query(
            "SELECT table_name, rule, on_failure, checked, failed FROM edi.validation_result"
            " WHERE file_id = %s AND table_name = 'override'",
            file_id,
        )
        return collect.file_summary(funds.dsn, file_id), results

    # Its kind's 30 days (not the default 730): the invoice of 40 days ago is refused.
    summary, results = ingest("00000001")
    assert (summary["state"], summary["records_rejected"]) == ("loaded_with_errors", 1)
    assert results == [
        ("override", "kind/pharmacy.yaml:care_window_days=30", "reject_record", 2, 1)
    ]
    # Its own 45 days win over its kind's.
    _contracts(funds.folder, {f"partner/{PHARMACY}.yaml": "tolerances:\n  care_window_days: 45\n"})
    summary, results = ingest("00000002")
    assert (summary["state"], summary["records_rejected"]) == ("loaded", 0)
    assert results == [
        ("override", f"partner/{PHARMACY}.yaml:care_window_days=45", "reject_record", 2, 0)
    ]
    # A file naming a partner the registry does not hold stops the check, named.
    _contracts(funds.folder, {"partner/PH999999.yaml": "tolerances: {care_window_days: 1}"})
    with pytest.raises(OverrideError, match=r"partner/PH999999\.yaml: PH999999 is not in the"):
        ingest("00000003")


def test_an_insurers_own_options_shape_its_file_the_others_as_the_format_makes_them(
    exports: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    columns = ["statement_number", "line_no", "member_number", "rate_percent",
               "reimbursed_cents", "patient_share_cents"]  # fmt: skip
    contracts = _contracts(exports.folder, {
        "kind/insurer.yaml": "export: {delimiter: '|', decimal_comma: true}",
        "partner/INS01.yaml": json.dumps(
            {"export": {"delimiter": ";", "columns": columns, "file_prefix": "MUT1_"}}
        ),
    })  # fmt: skip
    monkeypatch.setenv("EDIHUB_CONTRACTS_DIR", str(contracts))
    today = monaco_today()
    day_of_care(exports, today)
    exports.publish("INS01", today)
    name = f"MUT1_CSM_INS01_{today:%Y%m%d}_000001.csv"
    assert exports.query("SELECT file_name FROM edi.export_file WHERE insurer_id = 'INS01'") == [
        (name,)
    ]
    files = exports.pulled("INS01")
    manifest = json.loads(files[f"{name}.manifest.json"])
    assert (manifest["file"], manifest["row_count"]) == (name, 6)
    assert manifest["totals_cents"]["billed"] == 3 * 5500  # totals from every column
    text = files[name].decode()
    assert text.splitlines()[0] == ";".join(f'"{c}"' for c in columns)
    assert '"80,00"' in text  # the kind's decimal comma, under the insurer's own delimiter
    rows = pacsv.read_csv(
        io.BytesIO(files[name]), parse_options=pacsv.ParseOptions(delimiter=";")
    ).to_pylist()
    assert list(rows[0]) == columns and len(rows) == 6
    # INS02 exports XML: the kind's CSV options are not its; every column, as before.
    exports.publish("INS02", today)
    [(xml_name, xml)] = [(k, v) for k, v in exports.pulled("INS02").items() if k.endswith(".xml")]
    assert xml_name == f"CSM_INS02_{today:%Y%m%d}_000001.xml"
    assert list(read_export("xml", xml)[0]) == [
        c for c in export_contract().columns if not c.startswith("corrects_")
    ]


def test_a_file_keeps_the_options_it_was_planned_with_a_new_day_takes_the_new_ones(
    exports: Exports, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = "partner/INS01.yaml"
    contracts = _contracts(exports.folder, {
        override: "export: {delimiter: ';', decimal_comma: true, file_prefix: MUT1_}"
    })  # fmt: skip
    monkeypatch.setenv("EDIHUB_CONTRACTS_DIR", str(contracts))
    today, tomorrow = monaco_today(), monaco_today() + dt.timedelta(days=1)
    day_of_care(exports, today)
    first = exports.publish("INS01", today)
    before = exports.pulled("INS01")
    # Options B, then the file of today put back (gone from the server, so rendered anew).
    _contracts(exports.folder, {
        override: "export: {delimiter: '|', columns: [statement_number, line_no, rate_percent],"
                  " file_prefix: MUT2_}"
    })  # fmt: skip
    with exports.server.connect(exports.server.hub) as sftp:
        sftp.remove(first.path)
        again = reprocess.republish(sftp, exports.dsn, "INS01", today, "options changed")
    assert (again.path, again.sha256, again.uploaded) == (first.path, first.sha256, True)
    assert exports.pulled("INS01") == before
    # A new day's file is planned under B: its name, delimiter, columns, no decimal comma.
    care = [sheet(6), sheet(7)]  # INS01 member 123456 and his beneficiary
    exports.ingest("fse", fse_file(exports.folder / "F2.xml", care, batch="000002"), PRACTITIONER)
    build_statements(exports.dsn, now=dt.datetime.combine(tomorrow, dt.time(12), MONACO),
                     close_today=True)  # fmt: skip
    second = exports.publish("INS01", tomorrow)
    name = f"MUT2_CSM_INS01_{tomorrow:%Y%m%d}_000002.csv"
    assert Path(second.path).name == name
    lines = exports.pulled("INS01")[name].decode().splitlines()
    assert lines[0] == '"statement_number"|"line_no"|"rate_percent"'
    assert len(lines) == 5 and all(line.endswith("|80.00") for line in lines[1:])
    assert exports.query(
        "SELECT export_day, export_options->>'delimiter', export_options->>'file_prefix'"
        " FROM edi.export_file WHERE insurer_id = 'INS01' ORDER BY sequence"
    ) == [(today, ";", "MUT1_"), (tomorrow, "|", "MUT2_")]


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("pharmacy.yaml", "{}", r"pharmacy\.yaml: not an override file"),
        ("kind/plumber.yaml", "{}", r"kind/plumber\.yaml: no partner kind 'plumber'"),
        ("kind/pharmacy.yaml", "tolerance: {}", r"kind/pharmacy\.yaml: tolerance: unknown sec"),
        ("kind/dentist.yaml", "tolerances: {max_days: 45}", r"tolerances\.max_days: unknown key"),
        ("kind/company.yaml", "tolerances: {care_window_days: -1}", r"care_window_days: a numb"),
        ("kind/insurer.yaml", "tolerances: {care_window_days: 9}", r"not for a partner of kind"),
        ("kind/insurer.yaml", "export: {file_prefix: ../x}", r"export\.file_prefix: 1 to 32"),
        ("kind/insurer.yaml", "export: {columns: [line_no, statement_number]}", r"in the export"),
        ("kind/insurer.yaml", "export: {columns: [last_name]}", r"columns: a list of the expo"),
    ],
)
def test_an_override_file_in_error_is_refused_naming_file_and_key(
    tmp_path: Path, name: str, text: str, error: str
) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(OverrideError, match=error):
        load(tmp_path)


def test_show_prints_the_effective_settings_and_where_each_came_from(
    funds: Funds, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    contracts = _contracts(funds.folder, {
        "kind/pharmacy.yaml": "tolerances: {care_window_days: 30}",
        f"partner/{PHARMACY}.yaml": "tolerances: {care_window_days: 45}",
        "partner/INS01.yaml": "export: {decimal_comma: true, file_prefix: MUT1_}",
    })  # fmt: skip
    monkeypatch.setenv("EDIHUB_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("EDIHUB_DATABASE_URL", funds.dsn)
    assert cli.main(["overrides", "show", PHARMACY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{PHARMACY} (pharmacy): defaults, then ")
    assert [line.split() for line in lines[1:]] == [
        ["tolerances"],
        ["care_window_days", "45", f"partner/{PHARMACY}.yaml"],
        ["declaration_window_days", "730", "default"],
    ]
    assert cli.main(["overrides", "show", "INS01"]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines()[1:]] == [
        ["export"],
        ["delimiter", "','", "default"],
        ["decimal_comma", "true", "partner/INS01.yaml"],
        ["columns", "(all)", "default"],
        ["file_prefix", "'MUT1_'", "partner/INS01.yaml"],
    ]
    with pytest.raises(SystemExit, match="NOBODY is not in the partner registry"):
        cli.main(["overrides", "show", "NOBODY"])
