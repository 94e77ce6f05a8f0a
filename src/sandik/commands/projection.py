"""Commands of the projection area: ``sandik backtest``, ``sandik project``, ``sandik call``, ``sandik calls``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sandik.core.projection import CallRule, ModelParams
from sandik.errors import NotFound
from sandik.store.repository import ENV_DB, Store, open_store

out = Console(highlight=False)
err = Console(stderr=True)
db_option = click.option("--db", envvar=ENV_DB, default="sandik.sqlite", show_default=True, help="SQLite file or postgresql:// URL (env SANDIK_DB).")
election_option = click.option("--election", "election_id", default=None, help="Election id (default: the most recent one in the store).")

DATASETS = ("istanbul", "turkey", "istanbul-metro")


def _orders_default() -> str:
    from sandik.backtest.orders import ORDERS

    return ",".join(ORDERS)


@click.command()
@click.option("--data", "data", default="istanbul,turkey", show_default=True, help="Cases: istanbul (2014->2019, real boxes), turkey (2019->2024, districts), istanbul-metro (istanbul plus a synthetic box-level 2019 metropolitan race with the real 0.16-point province margin), comma-separated.")
@click.option("--orders", default=None, help=f"Arrival orders, comma-separated (default: all: {_orders_default()}).")
@click.option("--seed", default=0, show_default=True, help="Seed of random orders and of the arrival model.")
@click.option("--seeds", "more_seeds", default=None, help="Also replay every order with these seeds (comma-separated) and report each seed and the pooled 90%% coverage.")
@click.option("--step", default=0.025, show_default=True, help="Checkpoint every this share of the case's expected vote.")
@click.option("--elex/--no-elex", "with_elex", default=False, show_default=True, help="Also run the Washington Post's elex-model on the same replays (slow).")
@click.option("--races", "race_filter", default=None, help="Only races whose id contains this text (a quick subset).")
@click.option("--json", "as_json", is_flag=True, help="Summary per order (wrong calls, coverage, median share of expected vote at call) and per-race rows, as JSON.")
@click.option("--markdown", is_flag=True, help="Print the comparison tables as Markdown (for docs/backtests.md).")
def backtest(data: str, orders: str | None, seed: int, more_seeds: str | None, step: float, with_elex: bool, race_filter: str | None, as_json: bool, markdown: bool) -> None:
    """Replay real past elections in chosen arrival orders through the projection code and score it.

    Example: sandik backtest --data istanbul --orders random,size --json
    """
    from sandik.backtest.data import istanbul_case, istanbul_metro_case, turkey_case
    from sandik.backtest.orders import ORDERS
    from sandik.backtest.runner import pool_seeds, replay, summarize

    order_names = [o.strip() for o in (orders or _orders_default()).split(",") if o.strip()]
    for o in order_names:
        if o not in ORDERS:
            raise click.BadParameter(f"unknown order {o!r}; known: {', '.join(ORDERS)}", param_hint="--orders")
    try:
        extra = [int(x) for x in more_seeds.split(",") if x.strip()] if more_seeds else []
    except ValueError as exc:
        raise click.BadParameter(f"seeds must be integers: {more_seeds!r}", param_hint="--seeds") from exc
    extra = [x for x in dict.fromkeys(extra) if x != seed]
    cases = [c.strip() for c in data.split(",") if c.strip()]
    for c in cases:
        if c not in DATASETS:
            raise click.BadParameter(f"unknown case {c!r}; known: {', '.join(DATASETS)}", param_hint="--data")
    elex = None
    if with_elex:
        from sandik.backtest.elex_peer import ElexPeer

        elex = ElexPeer()
    report: dict[str, Any] = {"seed": seed, "step": step, "cases": {}}
    for cname in cases:
        with err.status(f"building case {cname}"):
            case = {"istanbul": istanbul_case, "turkey": turkey_case, "istanbul-metro": istanbul_metro_case}[cname]()
        if race_filter:
            keep = [r for r in case.frames if race_filter in r]
            if not keep:
                raise click.BadParameter(f"no race id contains {race_filter!r}", param_hint="--races")
            case = _subset(case, keep)
        summaries = []
        pooled = []
        for o in order_names:
            with err.status(f"{cname}: replaying in order {o}"):
                res = replay(case, o, seed=seed, step=step, elex=elex)
            s = summarize(res, case)
            summaries.append(s)
            err.print(f"{cname} {o}: {s['wrong_calls']} wrong calls, 90% coverage {s['coverage']['90']}, median call at {s['median_call_pct_expected']} of expected vote ({s['seconds']} s)")
            if extra:
                per = [s]
                for sd in extra:
                    with err.status(f"{cname}: replaying in order {o}, seed {sd}"):
                        per.append(summarize(replay(case, o, seed=sd, step=step), case))
                pooled.append(pool_seeds(per))
        report["cases"][cname] = {"description": case.description, "notes": case.notes, "races": len(case.frames), "orders": summaries}
        if pooled:
            report["cases"][cname]["seeds"] = pooled
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=1, default=_json_default) + "\n")
    elif markdown:
        sys.stdout.write(markdown_report(report))
    else:
        for cname, c in report["cases"].items():
            out.print(_table(cname, c))


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _subset(case: Any, keep: list[str]) -> Any:
    from dataclasses import replace

    return replace(
        case,
        frames={r: case.frames[r] for r in keep},
        final_votes={r: case.final_votes[r] for r in keep},
        final_valid={r: case.final_valid[r] for r in keep},
        unit_of={r: case.unit_of[r] for r in keep},
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _table(cname: str, c: dict[str, Any]) -> Table:
    t = Table(title=f"{cname}: {c['description']} ({c['races']} races)")
    for col in ("order", "wrong calls", "cov 80", "cov 90", "cov 95", "cov 99", "inverted", "width 90 (pts)", "margin err (pts)", "Brier", "median call", "median call >10pts", "lock-only median", "uniform swing err"):
        t.add_column(col, justify="right")
    for s in c["orders"]:
        cov = s["coverage"]
        t.add_row(
            s["order"], str(s["wrong_calls"]), _pct(cov["80"]), _pct(cov["90"]), _pct(cov["95"]), _pct(cov["99"]), str(s["inverted_intervals"]),
            _num(s["mean_width90_points"]), _num(s["mean_margin_error_points"]), _num(s["brier"], 4), _pct(s["median_call_pct_expected"]),
            _pct(s["median_call_pct_expected_margin_gt10"]), _pct(s["peers"]["lock_only"]["median_call_pct_expected"]),
            _num(s["peers"].get("uniform", {}).get("mean_margin_error_points")),
        )  # fmt: skip
    return t


def markdown_report(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for cname, c in report["cases"].items():
        lines.append(f"### {cname}: {c['description']} ({c['races']} races)\n")
        for n in c["notes"]:
            lines.append(f"- {n}")
        lines.append("")
        has_elex = any("elex" in s["peers"] for s in c["orders"])
        lines.append("| order | wrong calls | cov 80 | cov 90 | cov 95 | cov 99 | inverted | width 90 (pts) | margin err (pts) | Brier | median call | median call, margin >10 pts | lock-only median call | uniform swing margin err (pts) |" + (" elex-model cov 90 / width 90 / err |" if has_elex else ""))
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if has_elex else ""))
        for s in c["orders"]:
            cov = s["coverage"]
            ex = s["peers"].get("elex")
            ex_s = "not run" if ex is None else f"{_pct(ex.get('coverage', {}).get('90'))} / {_num(ex.get('mean_width90_points'))} / {_num(ex.get('mean_margin_error_points'))}"
            lines.append(
                f"| {s['order']} | {s['wrong_calls']} | {_pct(cov['80'])} | {_pct(cov['90'])} | {_pct(cov['95'])} | {_pct(cov['99'])} | {s['inverted_intervals']} | "
                f"{_num(s['mean_width90_points'])} | {_num(s['mean_margin_error_points'])} | {_num(s['brier'], 4)} | {_pct(s['median_call_pct_expected'])} | "
                f"{_pct(s['median_call_pct_expected_margin_gt10'])} | {_pct(s['peers']['lock_only']['median_call_pct_expected'])} | "
                f"{_num(s['peers'].get('uniform', {}).get('mean_margin_error_points'))} |" + (f" {ex_s} |" if has_elex else "")
            )
        lines.append("")
        if any("elex" in s["peers"] for s in c["orders"]):
            lines.append("elex-model (gaussian intervals) and sandik on exactly the same race checkpoints (90% margin interval):\n")
            lines.append(
                "| order | checkpoints | elex failed | elex cov 90 | elex width (pts) | elex margin err (pts) | elex inverted | sandik cov 90 | sandik width (pts) | sandik margin err (pts) "
                "| sandik at elex's width | elex at sandik's width |"
            )
            lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for s in c["orders"]:
                ex = s["peers"].get("elex")
                if not ex:
                    continue
                sm = ex.get("sandik_same_rows", {})
                eq = ex.get("equal_width", {})  # each model's point with the other's width: only the points compared
                lines.append(
                    f"| {s['order']} | {ex['n']} | {ex['failed']} | {_pct(ex.get('coverage', {}).get('90'))} | {_num(ex.get('mean_width90_points'))} | "
                    f"{_num(ex.get('mean_margin_error_points'))} | {ex.get('inverted_intervals', '-')} | {_pct(sm.get('coverage', {}).get('90'))} | "
                    f"{_num(sm.get('mean_width90_points'))} | {_num(sm.get('mean_margin_error_points'))} | "
                    f"{_pct(eq.get('sandik_at_peer_width'))} | {_pct(eq.get('peer_at_sandik_width'))} |"
                )
            lines.append("")
        if c.get("seeds"):
            seeds = [str(p["seed"]) for p in c["seeds"][0]["seeds"]]
            lines.append(f"Every order replayed with seeds {', '.join(seeds)} (90% coverage per seed, pooled over their race checkpoints):\n")
            lines.append("| order | 90% coverage, seeds " + " / ".join(seeds) + " | pooled | width 90 (pts), range | margin err (pts), range | worst bucket (n >= 40), range | wrong calls | median call, margin >10 pts, range |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for p in c["seeds"]:
                ps = p["seeds"]

                def rng(key: str, fmt) -> str:
                    xs = [x[key] for x in ps if x[key] is not None]
                    return f"{fmt(min(xs))}-{fmt(max(xs))}" if xs else "-"

                lines.append(
                    f"| {p['order']} | " + " / ".join(_pct(x["coverage_90"]) for x in ps) + f" | **{_pct(p['pooled_coverage_90'])}** | "
                    f"{rng('width90_points', _num)} | {rng('margin_error_points', _num)} | {rng('worst_bucket_90', _pct)} | {p['wrong_calls']} | "
                    f"{rng('median_call_pct_expected_margin_gt10', _pct)} |"
                )
            lines.append("")
        lines.append("Coverage of the nominal 90% margin interval by share of expected vote counted (race's own):\n")
        buckets = sorted({b for s in c["orders"] for b in s["by_bucket"]}, key=lambda b: (b != "0%", float(b.split("%")[0]) if b != "0%" else 0))
        lines.append("| order | " + " | ".join(buckets) + " |")
        lines.append("|---|" + "---|" * len(buckets))
        for s in c["orders"]:
            cells = []
            for b in buckets:
                x = s["by_bucket"].get(b)
                cells.append("-" if x is None else f"{_pct(x['coverage']['90'])} (n={x['n']}, w={_num(x['width90_points'], 1)})")
            lines.append(f"| {s['order']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _live(st: Store, election_id: str | None) -> tuple[Any, Any, Any]:
    from sandik.ingest.pipeline import build_tally

    eid = election_id or st.default_election_id()
    e = st.election(eid)
    prev = None
    if e.info.previous_id:
        try:
            prev = st.election(e.info.previous_id)
        except NotFound:
            err.print(f"[yellow]previous election {e.info.previous_id} is not in the store: projections have no baseline[/yellow]")
    tally, _ = build_tally(st, e)
    return e, prev, tally


def _alliances(e: Any) -> tuple[tuple[str, ...], ...]:
    # Alliances are facts of a country's previous election: Turkey's come with its datasets.
    if e.info.country == "TR":
        from sandik.backtest.data import ALLIANCES_TR

        return ALLIANCES_TR
    return ()


@click.command()
@click.option("--race", "race_id", default=None, help="A race id (default: every race with ballot boxes).")
@click.option("--record", is_flag=True, help="Log new automatic calls (lock or statistical) in the store, with the model state that made them.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@election_option
@db_option
def project(race_id: str | None, record: bool, as_json: bool, election_id: str | None, db: str) -> None:
    """Projected final result, intervals, P(win) and call of races, from the sheets counted so far.

    Example: sandik project --race tr.34:metropolitan_mayor --json
    """
    from sandik.core.projection.election import project_election
    from sandik.store import race_calls

    st = open_store(db)
    e, prev, tally = _live(st, election_id)
    if race_id is not None:
        e.race(race_id)
    outcomes = project_election(e, tally, prev, races=[race_id] if race_id else None, alliances=_alliances(e))
    if race_id is not None and race_id not in outcomes:
        raise click.ClickException(f"race {race_id} has no ballot boxes: nothing to project")
    standing = race_calls.current(st, e.id)
    if record:
        for rid, oc in outcomes.items():
            c = oc.call
            s = standing.get(rid)
            if c.called and (s is None or s.candidate != c.candidate):
                standing[rid] = race_calls.record(
                    st, e.id, rid, action="call", candidate=c.candidate, kind=c.kind or "statistical", reason="; ".join(c.reasons),
                    actor="sandik-model", pct_expected_counted=c.pct_expected_counted, model=c.to_dict()["model"],
                )  # fmt: skip
    rows = []
    for rid, oc in outcomes.items():
        d = oc.to_dict()
        s = standing.get(rid)
        d["standing_call"] = s.to_dict() if s else None
        rows.append(d)
    if as_json:
        payload: Any = rows[0] if race_id else rows
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=1, default=_json_default) + "\n")
        return
    t = Table(title=f"{e.info.name}: projections (estimates from partial results, with 90% intervals)")
    for col in ("race", "counted", "leader", "share (90%)", "margin pts (90%)", "P(win)", "less certain: why", "call", "standing call"):
        t.add_column(col)
    for d in sorted(rows, key=lambda d: -d["expected_valid"])[: (None if race_id else 40)]:
        lead = d["candidates"][0]
        iv = lead["share_interval"]["90"]
        miv = d["margin_points_interval"]["90"]
        call = d["call"]
        s = d["standing_call"]
        t.add_row(
            d["race_id"], _pct(d["pct_expected_vote_counted"]), lead["id"], f"{100 * lead['share']:.1f} ({100 * iv[0]:.1f}-{100 * iv[1]:.1f})",
            f"{d['margin_points']:.1f} ({miv[0]:.1f}-{miv[1]:.1f})", f"{lead['p_win']:.3f}", ", ".join(d["uncertainty"]) or "-",
            f"{call['candidate']} ({call['kind']})" if call["called"] else "; ".join(call["reasons"])[:60],
            f"{s['candidate']} ({s['kind']}, {s['actor']})" if s else "-",
        )  # fmt: skip
    out.print(t)


@click.command()
@click.argument("race_id")
@click.option("--candidate", default=None, help="The candidate id called as the winner.")
@click.option("--withdraw", is_flag=True, help="Withdraw the race's standing call.")
@click.option("--reason", required=True, help="Why (kept in the call log).")
@click.option("--by", "actor", default="admin", show_default=True, help="Who makes this call.")
@click.option("--json", "as_json", is_flag=True)
@election_option
@db_option
def call(race_id: str, candidate: str | None, withdraw: bool, reason: str, actor: str, as_json: bool, election_id: str | None, db: str) -> None:
    """Call a race by hand, or withdraw its call, with a reason.

    Example: sandik call tr.34:metropolitan_mayor --candidate CHP --reason "AP-style desk decision"
    """
    from sandik.store import race_calls

    if withdraw == bool(candidate):
        raise click.UsageError("give either --candidate X or --withdraw")
    st = open_store(db)
    eid = election_id or st.default_election_id()
    e = st.election(eid)
    race = e.race(race_id)
    if candidate and candidate not in race.candidate_index:
        raise click.ClickException(f"race {race_id} has no candidate {candidate!r}; candidates: {', '.join(race.candidate_index)}")
    if withdraw and race_id not in race_calls.current(st, eid):
        raise click.ClickException(f"race {race_id} has no standing call to withdraw")
    rec = race_calls.record(st, eid, race_id, action="withdraw" if withdraw else "call", candidate=candidate, kind="manual", reason=reason, actor=actor)
    if as_json:
        sys.stdout.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.print(f"{'withdrawn' if withdraw else 'called'}: {race_id}" + (f" for {candidate}" if candidate else "") + f" ({reason}) by {actor} at {rec.at}")


@click.command()
@click.option("--race", "race_id", default=None, help="Only this race's call history.")
@click.option("--json", "as_json", is_flag=True)
@election_option
@db_option
def calls(race_id: str | None, as_json: bool, election_id: str | None, db: str) -> None:
    """The call log: every call and withdrawal, automatic or by hand."""
    from sandik.store import race_calls

    st = open_store(db)
    eid = election_id or st.default_election_id()
    recs = race_calls.history(st, eid, race_id)
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in recs], ensure_ascii=False, default=_json_default) + "\n")
        return
    t = Table(title=f"race calls: {eid}")
    for col in ("at", "race", "action", "candidate", "kind", "by", "reason"):
        t.add_column(col)
    for r in recs:
        t.add_row(r.at, r.race_id, r.action, r.candidate or "-", r.kind, r.actor, r.reason[:80])
    out.print(t)


COMMANDS = [backtest, project, call, calls]

# Keep ModelParams/CallRule importable from here for scripts that tune the backtests.
__all__ = ["COMMANDS", "CallRule", "ModelParams", "markdown_report"]
