"""The ``sandik`` command line. Every command has ``--help``; ``--db`` (or $SANDIK_DB)
selects the SQLite file (default ./sandik.sqlite) or a postgresql:// URL."""

from __future__ import annotations

import os

# One BLAS thread (unless the user chose otherwise): the model's matrix products are small, and on
# a server OpenBLAS's extra threads only compete with request handling for the cores (measured:
# about a second of CPU more per full projection refresh on 2 cores, and no faster). Set before
# numpy is first imported, which loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import csv  # noqa: E402
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sandik.core.results import RaceResult, compare, final_results, flips_summary, race_result, scoreboards
from sandik.datasets import registry
from sandik.errors import SandikError
from sandik.formats.sheet_files import read_sheets
from sandik.ingest.pipeline import IngestReport, Ingestor, build_tally
from sandik.store.repository import ENV_DB, Store, open_store

console = Console(stderr=True)
out = Console(highlight=False)

db_option = click.option("--db", envvar=ENV_DB, default="sandik.sqlite", show_default=True, help="SQLite file or postgresql:// URL (env SANDIK_DB).")
election_option = click.option("--election", "election_id", default=None, help="Election id (default: the most recent one in the store).")


def _store(db: str) -> Store:
    return open_store(db)


def _election_id(store: Store, election_id: str | None) -> str:
    return election_id or store.default_election_id()


def _fmt_int(n: int) -> str:
    return f"{n:,}"


class SandikGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SandikError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=SandikGroup)
@click.version_option(package_name="sandik")
def main() -> None:
    """sandik: election-night results. Load an election, ingest tally sheets, follow the tallies."""


@main.command()
@db_option
def init(db: str) -> None:
    """Create or upgrade the database schema."""
    st = _store(db)
    out.print(f"schema ready ({st.dialect}); migrations applied now: {st.migrate() or 'none'}")


@main.command()
@click.argument("dataset")
@click.option("--path", default=None, help="File to import for box-level datasets (same format as the shared copy).")
@db_option
def load(dataset: str, path: str | None, db: str) -> None:
    """Load an election definition: tr-2024, istanbul-2019, turkey-2014, or an election file."""
    st = _store(db)
    ds = registry.get(dataset, path)
    for e in ds.elections():
        st.save_election(e)
        out.print(f"loaded {e.id}: {e.info.name}: {len(e.races):,} races, {len(e.box_ids):,} boxes, {len(e.areas):,} areas")


def _print_report(rep: IngestReport, *, max_lines: int = 20) -> None:
    out.print(
        f"received {rep.received:,}: accepted {rep.accepted:,} ({rep.corrections:,} corrections, {rep.with_warnings:,} with warnings), "
        f"duplicates {rep.duplicates:,}, quarantined {rep.quarantined:,}"
    )
    for r in rep.rejections[:max_lines]:
        for m in r.messages:
            console.print(f"[red]rejected[/red] {r.origin}: {m}")
    if len(rep.rejections) > max_lines:
        console.print(f"... and {len(rep.rejections) - max_lines:,} more rejections (see `sandik quarantine`)")


@main.command()
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "ndjson"]), default=None, help="Input format (default: from the file name or content).")
@click.option("--source", default="official", show_default=True, help="Source of sheets that do not name one: 'official' or an observer organisation id.")
@click.option("--by", "submitted_by", default="cli", show_default=True, help="Who submits these sheets (kept with every version).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--batch-size", default=5000, show_default=True, help="Sheets per transaction: each batch is durable before it is acknowledged.")
@click.option("--acks", is_flag=True, help="Print 'ack RECEIVED ACCEPTED' after each durable batch (for scripts that must know what was stored).")
@election_option
@db_option
def ingest(file: str, fmt: str | None, source: str, submitted_by: str, as_json: bool, batch_size: int, acks: bool, election_id: str | None, db: str) -> None:
    """Ingest tally sheets from a CSV, JSON or NDJSON file ('-' for stdin).

    Good rows are stored and counted; bad rows are quarantined with their reasons.
    Exits with status 1 if any row was quarantined.
    """
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    name = "<stdin>" if file == "-" else Path(file).name
    st = _store(db)
    ing = Ingestor(st, _election_id(st, election_id))
    if acks:
        done = [0, 0]

        def ack(batch: IngestReport) -> None:
            done[0] += batch.received
            done[1] += batch.accepted
            click.echo(f"ack {done[0]} {done[1]}")
            sys.stdout.flush()

        ing.listeners.append(ack)
    try:
        rep = ing.submit(read_sheets(data, name=name, fmt=fmt, default_source=source), origin=name, submitted_by=submitted_by, batch_size=batch_size)
    finally:
        ing.close()
    if as_json:
        out.print_json(data=rep.to_dict())
    else:
        _print_report(rep)
    if rep.quarantined:
        sys.exit(1)


@main.command()
@click.argument("dataset")
@click.option("--speed", default="max", show_default=True, help="'max', or N times real time (600 replays six hours in 36 s).")
@click.option("--seed", default=2024, show_default=True, help="Seed of the simulated night / arrival order.")
@click.option("--path", default=None, help="File to import for box-level datasets.")
@click.option("--quiet", is_flag=True, help="No live table, only the final summary.")
@db_option
def replay(dataset: str, speed: str, seed: int, path: str | None, quiet: bool, db: str) -> None:
    """Replay an election night through the real ingest path, printing live tallies."""
    st = _store(db)
    run_replay(st, dataset, speed=speed, seed=seed, path=path, quiet=quiet)


def run_replay(st: Store, dataset: str, *, speed: str = "max", seed: int = 2024, path: str | None = None, quiet: bool = False, on_batch: Any = None, ingestor: Any = None) -> IngestReport:
    ds = registry.get(dataset, path)
    elections = ds.elections()
    for e in elections:
        st.save_election(e)
    main_e = elections[-1]
    with console.status("simulating the night" if dataset == "tr-2024" else "reading the night"):
        night = ds.night(main_e, seed)
    # A server passes its live service's ingestor, so that the replay goes through its single writer.
    ing = ingestor or Ingestor(st, main_e.id)
    factor = None if speed == "max" else float(speed)
    total = _fmt_int(len(night))
    report = IngestReport()
    start = time.monotonic()
    last_print = 0.0
    step = 2000
    prev = {e.id: e for e in elections[:-1]}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False) as prog:
        task = prog.add_task(f"replaying {main_e.id} ({total} sheets)", total=len(night))
        for i in range(0, len(night), step):
            chunk = night[i : i + step]
            if factor:
                due = chunk[0].minutes * 60.0 / factor
                wait = due - (time.monotonic() - start)
                if wait > 0:
                    time.sleep(wait)
            report.merge(ing.submit([t.sheet for t in chunk], origin=f"replay:{dataset}", submitted_by="replay"))
            prog.advance(task, len(chunk))
            if on_batch:
                on_batch(ing)
            now = time.monotonic()
            if not quiet and (now - last_print > 3.0 or i + step >= len(night)):
                last_print = now
                prog.console.print(_live_table(ing, prev.get(main_e.info.previous_id or "")))
    _print_report(report, max_lines=5)
    return report


def _live_table(ing: Ingestor, previous: Any) -> Table:
    e = ing.election
    results = final_results(e, ing.tally)
    opened = sum(r.boxes_opened for r in results.values() if r.office in e.info.top_offices)
    boxes = sum(r.boxes_total for r in results.values() if r.office in e.info.top_offices)
    t = Table(title=f"{e.info.name}: {100 * opened / max(boxes, 1):.1f}% of ballot boxes opened (top races)", show_lines=False)
    t.add_column("race")
    t.add_column("opened", justify="right")
    t.add_column("leader")
    t.add_column("votes", justify="right")
    t.add_column("share", justify="right")
    t.add_column("margin", justify="right")
    top = sorted((r for r in results.values() if r.office in e.info.top_offices), key=lambda r: -r.registered_total)[:8]
    for r in top:
        lead = r.candidates[0] if r.candidates and r.leader else None
        t.add_row(
            r.race_name,
            f"{100 * r.boxes_opened_share:.1f}%",
            f"{lead.name} ({lead.party or 'IND'})" if lead else "-",
            _fmt_int(lead.votes) if lead else "-",
            f"{100 * lead.share:.1f}%" if lead else "-",
            _fmt_int(r.margin_votes) if lead else "-",
        )
    for b in scoreboards(e, results):
        if b.group.startswith("top:"):
            t.caption = "top races won/leading: " + ", ".join(f"{line.party} {line.won}+{line.leading}" for line in b.lines)
    return t


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--office", default=None, help="Only races of this office.")
@election_option
@db_option
def races(as_json: bool, office: str | None, election_id: str | None, db: str) -> None:
    """List the races of an election."""
    st = _store(db)
    e = st.election(_election_id(st, election_id))
    rows = [
        {"id": r.id, "office": r.office, "name": r.name, "area_id": r.area_id, "area_name": e.areas[r.area_id].name, "election_id": e.id, "boxes": int(len(e.race_boxes[r.id])), "candidates": len(r.candidates)}
        for r in e.races.values()
        if office is None or r.office == office
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    t = Table(title=f"{e.info.name}: {len(rows):,} races")
    for c in ("id", "office", "name", "boxes"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["id"], r["office"], r["name"], _fmt_int(r["boxes"]))
    out.print(t)


def _result_json(r: RaceResult) -> dict[str, Any]:
    return {
        "election_id": r.election_id,
        "race_id": r.race_id,
        "race_name": r.race_name,
        "office": r.office,
        "area_id": r.area_id,
        "area_name": r.area_name,
        "status": r.status,
        "boxes_opened": r.boxes_opened,
        "boxes_total": r.boxes_total,
        "registered": r.registered_total,
        "registered_opened": r.registered_opened,
        "votes_cast": r.total_voters,
        "ballots_used": r.ballots_used,
        "valid": r.valid,
        "invalid": r.invalid,
        "turnout": r.turnout,
        "leader": r.leader,
        "leader_party": r.leader_party,
        "margin_votes": r.margin_votes,
        "margin_points": r.margin_points,
        "expected_vote_share": r.expected_vote_share,
        "candidates": [{"id": c.id, "name": c.name, "party": c.party, "votes": c.votes, "share": c.share} for c in r.candidates],
    }


@main.command()
@click.option("--race", "race_id", default=None, help="A race id (see `sandik races`).")
@click.option("--area", "area_id", default=None, help="An area id: every race on the ballot there, at that area.")
@click.option("--scoreboard", is_flag=True, help="Races won and leading per party, per office.")
@click.option("--compare", "compare_prev", is_flag=True, help="Compare with the previous election: flips, swing, strongholds.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@election_option
@db_option
def results(race_id: str | None, area_id: str | None, scoreboard: bool, compare_prev: bool, as_json: bool, election_id: str | None, db: str) -> None:
    """Show live results: one race, an area, the party scoreboard or the comparison with the previous election."""
    st = _store(db)
    e = st.election(_election_id(st, election_id))
    tally, _ = build_tally(st, e)
    if scoreboard:
        boards = [b.to_dict() for b in scoreboards(e, final_results(e, tally))]
        if as_json:
            click.echo(json.dumps({"election_id": e.id, "scoreboards": boards}, ensure_ascii=False))
            return
        for b in boards:
            t = Table(title=f"{b['group']}: {b['races_reporting']} of {b['races']} races reporting")
            for c in ("party", "won", "leading", "total"):
                t.add_column(c)
            for p in b["parties"]:
                t.add_row(p["party"], str(p["won"]), str(p["leading"]), str(p["total"]))
            out.print(t)
        return
    if compare_prev:
        if not e.info.previous_id:
            raise click.ClickException(f"election {e.id} has no previous election")
        prev = st.election(e.info.previous_id)
        comps = compare(final_results(e, tally), final_results(prev, None))
        summary = flips_summary(comps)
        if as_json:
            click.echo(json.dumps({"election_id": e.id, "previous_id": prev.id, "summary": summary, "races": [c.to_dict() for c in comps]}, ensure_ascii=False))
            return
        out.print(f"flips since {prev.id}: {summary['flips']}")
        out.print(f"strongholds held: {summary['strongholds_held']}; lost: {summary['strongholds_lost']}")
        return
    if race_id:
        rs = [race_result(e, tally, race_id, area_id)]
    elif area_id:
        e.area(area_id)
        rs = [race_result(e, tally, r.id, area_id if area_id in tally.races[r.id].row_of else None) for r in e.races_on_ballot(area_id)]
    else:
        rs = sorted((r for r in final_results(e, tally).values() if r.office in e.info.top_offices), key=lambda r: r.race_name)
    if as_json:
        data = [_result_json(r) for r in rs]
        click.echo(json.dumps(data[0] if race_id else data, ensure_ascii=False))
        return
    for r in rs:
        t = Table(title=f"{r.race_name} ({r.area_name}): {r.boxes_opened:,}/{r.boxes_total:,} boxes, turnout {100 * (r.turnout or 0):.1f}%, {r.status}")
        for c in ("candidate", "party", "votes", "share"):
            t.add_column(c)
        for c in r.candidates:
            t.add_row(c.name, c.party or "IND", _fmt_int(c.votes), f"{100 * c.share:.2f}%")
        out.print(t)


@main.command()
@click.option("--what", type=click.Choice(["results", "sheets"]), default="results", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default="-", help="File to write (default stdout).")
@election_option
@db_option
def export(what: str, fmt: str, output: str, election_id: str | None, db: str) -> None:
    """Export every race's results (or every stored sheet version) as CSV or JSON."""
    st = _store(db)
    e = st.election(_election_id(st, election_id))
    fh = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
    try:
        if what == "results":
            tally, _ = build_tally(st, e)
            rows = []
            for r in final_results(e, tally).values():
                base = _result_json(r)
                for c in r.candidates:
                    rows.append({k: v for k, v in base.items() if k != "candidates"} | {"candidate_id": c.id, "candidate": c.name, "party": c.party or "", "votes": c.votes, "share": round(c.share, 6)})
        else:
            from sqlalchemy import select

            from sandik.store import schema

            with st.engine.connect() as conn:
                rows = [dict(m) for m in conn.execute(select(schema.sheets).where(schema.sheets.c.election_id == e.id).order_by(schema.sheets.c.seq)).mappings()]
        if fmt == "json":
            json.dump(rows, fh, ensure_ascii=False)
            fh.write("\n")
        elif rows:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    finally:
        if fh is not sys.stdout:
            fh.close()


@main.command()
@click.argument("box_id")
@click.option("--race", "race_id", default=None)
@click.option("--json", "as_json", is_flag=True)
@election_option
@db_option
def history(box_id: str, race_id: str | None, as_json: bool, election_id: str | None, db: str) -> None:
    """Every stored version of a box's sheets, from every source, with who, when and why."""
    st = _store(db)
    eid = _election_id(st, election_id)
    st.election(eid).box(box_id)
    versions = st.history(eid, box_id, race_id)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in versions], ensure_ascii=False))
        return
    for v in versions:
        out.print(f"{v.race_id} {v.source} v{v.version} seq {v.seq} by {v.submitted_by or '?'} at {v.received_at} {v.reason!r}: valid {v.counts['valid']}, votes {v.votes} {v.warnings or ''}")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True)
@election_option
@db_option
def quarantine(as_json: bool, limit: int, election_id: str | None, db: str) -> None:
    """Sheets and rows that were refused, with their reasons."""
    st = _store(db)
    eid = _election_id(st, election_id)
    rows = st.quarantined(eid, limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, default=str))
        return
    out.print(f"{st.count_quarantined(eid):,} quarantined in {eid}")
    for r in rows:
        for err in r["errors"]:
            if err.get("severity", "error") == "error":
                out.print(f"#{r['id']} {r['origin']}: {err['message']}")


@main.command()
@click.option("--speed", default="600", show_default=True, help="Replay speed ('max' or N times real time).")
@click.option("--seed", default=2024, show_default=True)
@click.option("--fresh/--keep", default=True, show_default=True, help="Start from an empty database file.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Start the web server and replay into it (the website shows the night live).")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="With --serve: port to listen on.")
@click.option("--exit-when-done", is_flag=True, help="With --serve: stop the server when the replay ends instead of serving on.")
@db_option
def demo(speed: str, seed: int, fresh: bool, serve: bool, host: str, port: int, exit_when_done: bool, db: str) -> None:
    """Build the 2024 Turkish local elections, replay the night, print live tallies (and show them on the website)."""
    if fresh and "://" not in db:
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)
    st = _store(db)
    if serve:
        from sandik.commands.web import serve_with_replay

        serve_with_replay(st, dataset="tr-2024", speed=speed, seed=seed, host=host, port=port, linger=not exit_when_done, after_replay=lambda: _demo_summary(st))
    else:
        run_replay(st, "tr-2024", speed=speed, seed=seed)
        _demo_summary(st)


def _demo_summary(st: Store) -> None:
    e = st.election(st.default_election_id())
    tally, _ = build_tally(st, e)
    res = final_results(e, tally)
    for b in scoreboards(e, res):
        if b.group.startswith("top:"):
            out.print("provinces won: " + ", ".join(f"{line.party} {line.total}" for line in b.lines))
    ist = res.get("tr.34:metropolitan_mayor")
    if ist:
        out.print("İstanbul: " + ", ".join(f"{c.name or c.party} {c.votes:,}" for c in ist.candidates[:2]))


# Commands of the other areas live in sandik/commands/<area>.py, each exposing COMMANDS.
_COMMAND_MODULES = ("web", "projection", "forensics", "news")


def _register_commands() -> None:
    import importlib
    import importlib.util

    for name in _COMMAND_MODULES:
        mod_name = f"sandik.commands.{name}"
        if importlib.util.find_spec(mod_name) is None:
            continue
        mod = importlib.import_module(mod_name)
        for cmd in mod.COMMANDS:
            main.add_command(cmd)


_register_commands()

if __name__ == "__main__":
    main()
