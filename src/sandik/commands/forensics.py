"""CLI: ``sandik forensics``, ``sandik observers ...``, ``sandik pvt``.

Registered by ``sandik.cli`` through ``COMMANDS``. Every command is a thin
shell: the work is in ``sandik.core.forensics``, ``sandik.core.discrepancy``,
``sandik.core.pvt`` and ``sandik.observers``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sandik.formats.sheet_files import read_sheets
from sandik.ingest.pipeline import BadRow
from sandik.observers import service
# The forensics modules pull in scipy (~0.7 s): imported by the commands that use them, so
# that every other command (and `sandik --help`) starts without paying for it.
from sandik.store.repository import ENV_DB, open_store

out = Console(highlight=False)
err = Console(stderr=True)
db_option = click.option("--db", envvar=ENV_DB, default="sandik.sqlite", show_default=True, help="SQLite file or postgresql:// URL (env SANDIK_DB).")
election_option = click.option("--election", "election_id", default=None, help="Election id (default: the most recent one in the store).")


def _open(db: str, election_id: str | None) -> tuple[object, str]:
    st = open_store(db)
    return st, election_id or st.default_election_id()


@click.command("forensics")
@click.option("--tier", type=click.Choice(["high", "medium", "low"]), default="low", show_default=True, help="Lowest tier listed.")
@click.option("--limit", type=int, default=None, help="List at most this many flags (largest effect first).")
@click.option("--json", "as_json", is_flag=True, help="Every flag as JSON (box id, race, signals, tier, effect on the margin).")
@click.option("--fingerprint", "fp_out", default=None, help="Also write the turnout x winner-share fingerprint as SVG to this file, and run the integer and last-digit tests.")
@click.option("--dataset", default=None, help="Check a dataset's sheets as received (tr-2024, istanbul-2019, turkey-2014), without a store: sheets that break the tally rules are flagged, not quarantined.")
@click.option("--path", default=None, help="With --dataset: the file to import (same format as the shared copy).")
@election_option
@db_option
def forensics_cmd(tier: str, limit: int | None, as_json: bool, fp_out: str | None, dataset: str | None, path: str | None, election_id: str | None, db: str) -> None:
    """Review flags for every counted box, ranked by possible effect on the margin. A flag is not an accusation."""
    if dataset:
        from sandik.datasets import registry

        ds = registry.get(dataset, path)
        election = ds.elections()[-1]
        from sandik.core.forensics.table import from_sheets
        from sandik.observers.forensics_store import fingerprint_for_table, report_for_table

        tab = from_sheets(election, [t.sheet for t in ds.night(election, 2024)])
        rep = report_for_table(tab, min_tier=tier, limit=limit)
        page = fingerprint_for_table(tab) if fp_out else None
        eid = election.id
    else:
        st, eid = _open(db, election_id)
        from sandik.observers.forensics_store import fingerprint_page, forensics_report

        rep = forensics_report(st, eid, min_tier=tier, limit=limit)  # type: ignore[arg-type]
        page = fingerprint_page(st, eid) if fp_out else None  # type: ignore[arg-type]
    if fp_out and page is not None:
        Path(fp_out).write_text(page["svg"], encoding="utf-8")
        rep["fingerprint"] = {k: v for k, v in page["fingerprint"].items() if k not in ("counts", "valid_weighted")}
        rep["integer_test"] = page["integer_test"]
        rep["last_digits"] = {k: v for k, v in page["last_digits"].items() if k != "areas"}
    if as_json:
        sys.stdout.write(json.dumps(rep, ensure_ascii=False) + "\n")
        return
    out.print(f"{eid}: {rep['sheets']:,} official sheets; flagged: " + ", ".join(f"{t} {n:,}" for t, n in rep.get("flagged", {}).items()) + f" ({rep['method_version']})")
    t = Table("box", "race", "tier", "effect", "signals")
    for f in rep["flags"][: limit or 50]:
        t.add_row(f["box_id"], f["race_id"], f["tier"], f"{f['effect_on_margin']:+,}", "; ".join(s["detail"] for s in f["signals"]))
    out.print(t)
    for r in rep["races"][:20]:
        verdict = "could change the winner" if r["could_change_winner"] else "could not change the winner"
        out.print(f"{r['race_id']}: {r['flagged_boxes']} high-tier flags, summed |effect| {r['sum_abs_effect']:,} vs lead {r['lead']:,}: {verdict}")
    if "integer_test" in rep:
        for name, x in rep["integer_test"]["tests"].items():
            out.print(f"integer test ({name}): {x['observed']:,} boxes on whole percentages, null mean {x['null_mean']:,.0f}, 99.9% {x['null_q999']:,.0f}: {'SIGNIFICANT' if x['significant'] else 'not significant'}")
    out.print(rep["note"])


@click.group("observers")
def observers_cmd() -> None:
    """Observer organisations' copies: entries, confirmation, discrepancies and their workflow."""


@observers_cmd.command("enter")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--org", required=True, help="Observer organisation id (the sheets' source).")
@click.option("--entrant", default="", help="Volunteer who typed these entries (default: each row's submitted_by).")
@click.option("--k", "k", default=3, show_default=True, help="Identical entries needed to confirm a copy.")
@click.option("--json", "as_json", is_flag=True)
@election_option
@db_option
def enter_cmd(file: str, org: str, entrant: str, k: int, as_json: bool, election_id: str | None, db: str) -> None:
    """Store volunteers' entries (CSV/JSON/NDJSON sheets); confirmed copies go through the ingest as source=ORG (never counted)."""
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    st, eid = _open(db, election_id)
    sheets = []
    bad = []
    for it in read_sheets(data, name=file, default_source=org):
        if isinstance(it, BadRow):
            bad.append({"origin": it.origin, "error": str(it.error)})
        else:
            sheets.append(it)
    rep = service.add_entries(st, eid, org, entrant, sheets, k=k).to_dict()  # type: ignore[arg-type]
    rep["unreadable"] = bad
    if as_json:
        sys.stdout.write(json.dumps(rep, ensure_ascii=False) + "\n")
    else:
        out.print(f"stored {rep['stored']} entries, refused {len(rep['refused']) + len(bad)}, confirmed copies ingested {rep['ingested']}, quarantined {len(rep['quarantined'])}")
        for r in rep["refused"] + bad:
            err.print(f"[red]refused[/red] {r.get('box_id', r.get('origin'))}: {r['error']}")
        for q in rep["quarantined"]:
            err.print(f"[red]quarantined[/red] {q['box_id']} {q['race_id']}: {'; '.join(q['messages'])}")
        for c in rep["confirmations"]:
            if c["status"] != "confirmed":
                out.print(f"{c['box_id']} {c['race_id']}: {c['status']} ({c['agreeing']} of {c['k']} agreeing){' disagree on ' + ', '.join(c['disagreements']) if c['disagreements'] else ''}")
    if rep["refused"] or bad or rep["quarantined"]:
        sys.exit(1)


@observers_cmd.command("sync")
@election_option
@db_option
def sync_cmd(election_id: str | None, db: str) -> None:
    """Compare every official sheet with every confirmed copy; open, update, resolve or reopen discrepancies."""
    st, eid = _open(db, election_id)
    out.print(service.sync_discrepancies(st, eid))  # type: ignore[arg-type]


@observers_cmd.command("discrepancies")
@click.option("--status", type=click.Choice(service.STATUSES), default=None)
@click.option("--org", default=None)
@click.option("--race", "race_id", default=None)
@click.option("--kind", default=None)
@click.option("--all", "show_all", is_flag=True, help="Include dismissed and header-only discrepancies.")
@click.option("--csv", "csv_out", default=None, help="Write them as CSV to this file ('-' for stdout).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--impact", is_flag=True, help="Per race: could the open discrepancies change the winner?")
@election_option
@db_option
def discrepancies_cmd(status: str | None, org: str | None, race_id: str | None, kind: str | None, show_all: bool, csv_out: str | None, as_json: bool, impact: bool, election_id: str | None, db: str) -> None:
    """List discrepancies by impact on the margin (real ones only unless --all)."""
    st, eid = _open(db, election_id)
    if impact:
        rows = service.race_impacts(st, eid)  # type: ignore[arg-type]
        if as_json:
            sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        else:
            for r in rows:
                out.print(f"{r['race_id']}: {r['wording']}")
        return
    rows = service.discrepancy_list(st, eid, status=status, org=org, race_id=race_id, kind=kind, real_only=not show_all)  # type: ignore[arg-type]
    if csv_out:
        text_ = service.export_csv(rows)
        if csv_out == "-":
            sys.stdout.write(text_)
        else:
            Path(csv_out).write_text(text_, encoding="utf-8")
        return
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    t = Table("id", "box", "race", "org", "status", "kind", "effect", "fields")
    for r in rows:
        t.add_row(str(r["id"]), r["box_id"], r["race_id"], r["org"], r["status"], r["kind"], f"{r['effect_on_margin']:+,}", ", ".join(d["field"] for d in r["detail"].get("diffs", [])))
    out.print(t)


@observers_cmd.command("review")
@click.argument("discrepancy_id", type=int)
@click.option("--to", "to", required=True, type=click.Choice(service.STATUSES))
@click.option("--by", "by", required=True, help="Who makes the change.")
@click.option("--reason", default="", help="Why (required to resolve or dismiss).")
@click.option("--corrected-version", type=int, default=None, help="Official sheet version that settled it.")
@click.option("--json", "as_json", is_flag=True)
@db_option
def review_cmd(discrepancy_id: int, to: str, by: str, reason: str, corrected_version: int | None, as_json: bool, db: str) -> None:
    """Move a discrepancy: open -> under_review -> resolved / dismissed (history kept)."""
    st = open_store(db)
    d = service.transition(st, discrepancy_id, to, by=by, reason=reason, corrected_version=corrected_version)
    if as_json:
        sys.stdout.write(json.dumps(d, ensure_ascii=False) + "\n")
    else:
        out.print(f"discrepancy {d['id']} ({d['box_id']}, {d['race_id']}, {d['org']}): {d['status']}")
        for h in d["history"]:
            out.print(f"  {h['at']} {h['by']}: {h['from_status']} -> {h['to_status']} {h['reason']}")


@observers_cmd.command("box")
@click.argument("box_id")
@election_option
@db_option
def box_cmd(box_id: str, election_id: str | None, db: str) -> None:
    """One box: the official sheet and every organisation's copy side by side (JSON)."""
    st, eid = _open(db, election_id)
    sys.stdout.write(json.dumps(service.box_sheets(st, eid, box_id), ensure_ascii=False) + "\n")  # type: ignore[arg-type]


@click.command("pvt")
@click.option("--race", "race_id", required=True)
@click.option("--org", required=True, help="Organisation whose confirmed copies form the sampling frame.")
@click.option("--n", "n", default=500, show_default=True, help="Sample size (boxes).")
@click.option("--seed", default=1, show_default=True)
@click.option("--strata", type=click.Choice(["area", "parent", "size"]), default="parent", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@election_option
@db_option
def pvt_cmd(race_id: str, org: str, n: int, seed: int, strata: str, as_json: bool, election_id: str | None, db: str) -> None:
    """Sample check: ratio estimates with 99% intervals from confirmed copies; alert if the official result falls outside."""
    st, eid = _open(db, election_id)
    from sandik.observers.forensics_store import pvt_report

    rep = pvt_report(st, eid, race_id, org, n=n, seed=seed, strata=strata)  # type: ignore[arg-type]
    if as_json:
        sys.stdout.write(json.dumps(rep, ensure_ascii=False) + "\n")
    else:
        for c in rep["candidates"]:
            off = "-" if c["official"] is None else f"{100 * c['official']:.2f}%"
            out.print(f"{c['id']:<12} PVT {100 * c['pvt']:.2f}% [{100 * c['lower']:.2f}, {100 * c['upper']:.2f}]  official {off}{'  OUTSIDE' if c['outside'] else ''}")
        out.print(rep["wording"])
    if rep["alert"]:
        sys.exit(2)


COMMANDS = [forensics_cmd, observers_cmd, pvt_cmd]
