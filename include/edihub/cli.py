"""``edihub``: the hub's command line.

edihub run                      the embedded stack and the FSE collection (README, Quick start)
edihub stack env|check|exec C   the same topology as separate processes, on external servers
edihub validate --feed fse F    check a file as the hub would, print its acknowledgment
edihub db migrate               apply the database migrations (EDIHUB_DATABASE_URL)
edihub reprocess file|sender|insurer  try a file again from its archive; republish an export
edihub quarantine list|release ID      files quarantined unread, let one be read
edihub registry load FILE...    load registry snapshots from this machine (EDIHUB_DATABASE_URL)
edihub partners list|add|...    change one partner of the registry, audited; the SFTP side follows
edihub sftp sshd-config --out D the partners' OpenSSH configuration, from the registry
edihub retention run [--dry-run] purge what is past its retention period, audited
edihub kpi report --out FILE    the KPI dashboard as one HTML file, or JSON (EDIHUB_DATABASE_URL)
edihub docs contracts [--out D] Great Expectations' Data Docs of the data contracts
edihub trace NAME|SHA256|ID     what happened to a file: its journey, or --json
edihub overrides show PARTNER   a partner's effective tolerances or export options, and whence
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path, PurePosixPath

from edihub import clock
from edihub.config import REPO_ROOT, Settings
from edihub.feeds import FEEDS

EXIT_ACCEPTED, EXIT_WITH_ERRORS, EXIT_REJECTED = 0, 1, 2


def _database_url() -> str:
    url = os.environ.get("EDIHUB_DATABASE_URL")
    if not url:
        sys.exit("edihub: set EDIHUB_DATABASE_URL (postgresql://user@host:port/db)")
    return url


def cmd_validate(args: argparse.Namespace) -> int:
    from edihub.acks.ack import AckError, build_ack
    from edihub.validation import check_file

    settings = Settings.from_env()
    path: Path = args.file
    if not path.is_file():
        sys.exit(f"edihub: {path}: no such file")
    url = os.environ.get("EDIHUB_DATABASE_URL")
    if url:
        from edihub.load.db import connect
        from edihub.validation import DatabaseLookup

        with connect(url) as conn:
            verdict, errors = check_file(
                path, settings, args.feed, args.sender, DatabaseLookup(conn)
            )
    else:
        verdict, errors = check_file(path, settings, args.feed, args.sender, None)
        print(
            "edihub: offline check (EDIHUB_DATABASE_URL not set): the rules that need the "
            "funds' registry or earlier loads were not checked",
            file=sys.stderr,
        )
    file = {
        "id": "local",
        "feed": args.feed,
        "sender": args.sender or "unknown",
        "remote_name": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "received_at": clock.now(),
        "state": verdict.state,
        "reason_code": verdict.reason_code,
        "reason": verdict.reason,
        "batch_number": verdict.batch_number,
        "format_version": verdict.format_version,
        "records_total": verdict.records_total,
        "records_loaded": verdict.records_loaded,
        "records_rejected": verdict.records_rejected,
    }
    ack_errors = [
        AckError(
            e["level"],
            e["rule"],
            e["message"],
            e["record_no"],
            e["record_id"],
            e["field"],
            e["value"],
        )
        for e in errors
    ]
    sys.stdout.write(build_ack(file, ack_errors, len(ack_errors), clock.now()).decode("utf-8"))
    return {"loaded": EXIT_ACCEPTED, "loaded_with_errors": EXIT_WITH_ERRORS}.get(
        verdict.state, EXIT_REJECTED
    )


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from edihub.load.db import migrate

    applied = migrate(_database_url())
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    from edihub.reprocess import command

    return command(args, _database_url())


def cmd_registry_load(args: argparse.Namespace) -> int:
    """Seed or repair the registry from the core systems' extracts, through the registry's
    contracts, as if the core systems' account had sent them."""
    from edihub.collect import file_summary, ingest_local

    settings = Settings.from_env()
    url = _database_url()
    sender = args.sender or settings.registry_senders[0]
    worst = EXIT_ACCEPTED
    for path in args.files:
        if not path.is_file():
            sys.exit(f"edihub: {path}: no such file")
        outcome = file_summary(url, ingest_local(url, settings, "registry", path, sender))
        reason = f" ({outcome['reason_code']})" if outcome["reason_code"] else ""
        print(f"{path.name}: {outcome['state']}{reason}, {outcome['records_loaded'] or 0} rows")
        if outcome["state"] not in ("loaded", "loaded_with_errors"):
            worst = EXIT_REJECTED
    return worst


def cmd_partners(args: argparse.Namespace) -> int:
    from edihub.partners import run_command

    return run_command(args, _database_url())


def cmd_docs_formats(args: argparse.Namespace) -> int:
    from edihub.partner_docs import write_partner_docs

    for path in write_partner_docs(args.out):
        print(path)
    return 0


def cmd_docs_contracts(args: argparse.Namespace) -> int:
    from edihub.contracts.docs import write_data_docs

    settings = Settings.from_env()
    print(write_data_docs(settings.contracts_dir, args.out or settings.state_dir / "data_docs"))
    return 0


def cmd_sftp_sshd_config(args: argparse.Namespace) -> int:
    from edihub.sftp import sshd_config

    try:
        service = sshd_config.service_account(args.service_account, args.service_key)
        plan, removed = sshd_config.generate(
            _database_url(), Settings.from_env(), args.out, root=args.root, service=service
        )
    except (sshd_config.SshdConfigError, OSError) as exc:
        sys.exit(f"edihub: {exc}")
    print(f"{args.out}: sshd_config, accounts.tsv, authorized_keys/; {plan.summary()}")
    for name in removed:
        print(f"  removed authorized_keys/{name}: no longer an account")
    return 0


def cmd_stack(args: argparse.Namespace) -> int:
    from edihub.stack.topology import command

    return command(args.stack, [args.component, *args.arguments] if args.stack == "exec" else [])


def cmd_retention_run(args: argparse.Namespace) -> int:
    from edihub.retention import command

    return command(_database_url(), dry_run=args.dry_run)


def cmd_kpi_report(args: argparse.Namespace) -> int:
    from edihub.kpi.report import write_report

    dashboard = write_report(_database_url(), args.out, json_format=args.json)
    print(f"{args.out}: {len(dashboard.tiles)} figures, {len(dashboard.charts)} charts")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from edihub.trace import render_text, to_json, trace

    journeys = trace(_database_url(), args.query)
    sys.stdout.write(to_json(journeys) + "\n" if args.json else render_text(args.query, journeys))
    return 0 if journeys else 1


def cmd_overrides_show(args: argparse.Namespace) -> int:
    from edihub.overrides import OverrideError, show_partner

    try:
        print(show_partner(_database_url(), args.partner), end="")
    except OverrideError as exc:
        sys.exit(f"edihub: {exc}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edihub.stack.run import run_command

    return run_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edihub", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the embedded stack and run the FSE collection")
    from edihub.stack.run import add_arguments

    add_arguments(run)
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser(
        "validate",
        help="check a file with the hub's format and data contracts",
        description="Prints the acknowledgment the hub would send. Exit status: 0 accepted, "
        "1 accepted with errors, 2 rejected.",
    )
    validate.add_argument("--feed", required=True, choices=sorted(FEEDS))
    validate.add_argument(
        "--sender", help="the partner id the file is sent as (default: its header)"
    )
    validate.add_argument("file", type=Path)
    validate.set_defaults(func=cmd_validate)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db", required=True)
    db.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_db_migrate)

    from edihub.reprocess import add_arguments as add_reprocess_arguments

    for again in add_reprocess_arguments(sub):
        again.set_defaults(func=cmd_reprocess)

    docs = sub.add_parser("docs", help="documentation").add_subparsers(dest="docs", required=True)
    formats = docs.add_parser(
        "formats", help="write the partner documentation of every format, from the contracts"
    )
    formats.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "formats")
    formats.set_defaults(func=cmd_docs_formats)
    contracts = docs.add_parser(
        "contracts", help="build Great Expectations' Data Docs of the data contracts' suites"
    )
    contracts.add_argument("--out", type=Path, help="default: <state>/data_docs")
    contracts.set_defaults(func=cmd_docs_contracts)

    registry = sub.add_parser("registry", help="reference registry").add_subparsers(
        dest="registry", required=True
    )
    load = registry.add_parser(
        "load",
        help="replace registry documents from CSV snapshots on this machine",
        description="Each file goes through the registry's format and data contracts; "
        "exit status 2 if any is refused.",
    )
    load.add_argument("files", type=Path, nargs="+", metavar="FILE")
    load.add_argument("--sender", help="the core system's account (EDIHUB_REGISTRY_SENDERS)")
    load.set_defaults(func=cmd_registry_load)

    partners = sub.add_parser(
        "partners",
        help="add, change, suspend, resume a partner or rotate its key: a new registry snapshot",
        description="Each change is a snapshot of the document it touches, through the "
        "registry's contracts (exit status 2 if refused), audited (edihub partners audit).",
    )
    from edihub.partners import add_arguments as add_partner_arguments

    add_partner_arguments(partners)
    partners.set_defaults(func=cmd_partners)

    sftp = sub.add_parser("sftp", help="the partners' SFTP server").add_subparsers(
        dest="sftp", required=True
    )
    sshd = sftp.add_parser(
        "sshd-config",
        help="write OpenSSH's configuration of the partner accounts from the registry",
        description="Writes DIR/sshd_config (one chrooted, SFTP-only Match block per partner "
        "account with a valid key; insurers read-only), DIR/authorized_keys/<account> and "
        "DIR/accounts.tsv (the system accounts to create), and lists what was left out.",
    )
    sshd.add_argument("--out", type=Path, required=True, metavar="DIR")
    sshd.add_argument(
        "--root",
        type=PurePosixPath,
        default=PurePosixPath("/"),
        help="the folder holding partners/ and archive/ on the SFTP server (default /)",
    )
    sshd.add_argument("--service-account", help="the hub's own account (not a partner's)")
    sshd.add_argument("--service-key", type=Path, help="its public key file")
    sshd.set_defaults(func=cmd_sftp_sshd_config)

    stack = sub.add_parser(
        "stack",
        help="Airflow's components as separate processes, on an external PostgreSQL and sshd",
        description="Reads the EDIHUB_* inputs of edihub.stack.topology (docs/operations.md).",
    ).add_subparsers(dest="stack", required=True)
    stack.add_parser(
        "env", help="print the AIRFLOW__ settings and AIRFLOW_CONN_ connections (sh syntax)"
    ).set_defaults(func=cmd_stack)
    stack.add_parser(
        "check", help="reach the hub database and the SFTP server through those connections"
    ).set_defaults(func=cmd_stack)
    run_component = stack.add_parser(
        "exec",
        help="become `airflow COMPONENT ...` under that environment (a systemd unit's command)",
    )
    run_component.add_argument("component", help="api-server, scheduler, dag-processor, ...")
    run_component.add_argument("arguments", nargs=argparse.REMAINDER)
    run_component.set_defaults(func=cmd_stack)

    retention = sub.add_parser("retention", help="retention periods").add_subparsers(
        dest="retention", required=True
    )
    purge = retention.add_parser(
        "run",
        help="purge what is past its period (EDIHUB_RETAIN_*_DAYS), each purge audited",
        description="Reads EDIHUB_DATABASE_URL, EDIHUB_SFTP_* (the hub's account; without "
        "EDIHUB_SFTP_HOST the SFTP server's files are left) and EDIHUB_SFTP_LOG (OpenSSH).",
    )
    purge.add_argument("--dry-run", action="store_true", help="only print what would go")
    purge.set_defaults(func=cmd_retention_run)

    kpi = sub.add_parser("kpi", help="the KPI dashboard").add_subparsers(dest="kpi", required=True)
    report = kpi.add_parser(
        "report",
        help="write the dashboard as one self-contained HTML file (or JSON)",
        description="The brochure's figures computed from the hub's tables, with their charts: "
        "inline CSS and SVG, nothing fetched, for mail-outs.",
    )
    report.add_argument("--out", type=Path, required=True, metavar="FILE")
    report.add_argument("--json", action="store_true", help="JSON for machines instead of HTML")
    report.set_defaults(func=cmd_kpi_report)

    trace = sub.add_parser(
        "trace",
        help="what happened to a file: received, validated, loaded, acknowledged, exported",
        description="Every file with that name (newest first), sha256 or id, as a timeline. "
        "Exit status 1 if there is none.",
    )
    trace.add_argument("query", metavar="NAME|SHA256|ID")
    trace.add_argument("--json", action="store_true", help="JSON for scripts")
    trace.set_defaults(func=cmd_trace)

    overrides = sub.add_parser(
        "overrides", help="per-partner overrides (contracts/overrides)"
    ).add_subparsers(dest="overrides", required=True)
    show = overrides.add_parser(
        "show",
        help="a partner's effective settings and where each came from",
        description="Defaults, then the partner's kind's file, then its own; every override "
        "file is checked against the registry (exit status 1 on an error).",
    )
    show.add_argument("partner", metavar="PARTNER", help="its registry id")
    show.set_defaults(func=cmd_overrides_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
