"""``sandik check-article`` and ``sandik summary``: news checked against the results, and reports written from them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from sandik.news.claims import Checker
from sandik.news.facts import Facts
from sandik.news.service import facts_from_dataset, facts_from_store
from sandik.news.summary import summarize
from sandik.store.repository import ENV_DB, open_store

out = Console(highlight=False)
_COLOURS = {"supported": "green", "contradicted": "red", "not_checkable": "yellow"}


def _facts(db: str | None, election_id: str | None, final: bool, dataset: str) -> Facts:
    """Facts from the store when one is named (--db, $SANDIK_DB) or ./sandik.sqlite exists; else the built-in dataset."""
    db = db or os.environ.get(ENV_DB)
    if db is None and Path("sandik.sqlite").exists():
        db = "sandik.sqlite"
    if db is None:
        return facts_from_dataset(dataset, election_id)
    return facts_from_store(open_store(db), election_id, final=final)


_common = [
    click.option("--election", "election_id", default=None, help="Election id (default: the most recent one)."),
    click.option(
        "--db",
        default=None,
        help=f"SQLite file or postgresql:// URL (env {ENV_DB}); without one, ./sandik.sqlite if it exists, else the built-in dataset's final results.",
    ),
    click.option("--final", is_flag=True, help="Use the final results even if the store holds a live tally."),
    click.option("--dataset", default="tr-2024", show_default=True, help="Built-in dataset used when there is no store."),
]


def _with_common(f):  # type: ignore[no-untyped-def]
    for opt in reversed(_common):
        f = opt(f)
    return f


@click.command("check-article")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: claims, unlinked_names, foreign_places.")
@_with_common
def check_article(file: str, as_json: bool, election_id: str | None, db: str | None, final: bool, dataset: str) -> None:
    """Check a news article's claims (English or Turkish) against the election results.

    Example: sandik check-article article.txt --json
    """
    text = click.get_text_stream("stdin").read() if file == "-" else Path(file).read_text(encoding="utf-8")
    facts = _facts(db, election_id, final, dataset)
    res = Checker(facts).check(text)
    if as_json:
        click.echo(json.dumps(res.to_dict(), ensure_ascii=False, indent=1))
        return
    out.print(f"[bold]{len(res.claims)} claims[/bold] ({res.language}), checked against {escape(res.source)}")
    for c in res.claims:
        col = _COLOURS[c.verdict]
        out.print(f"[{col}]{c.verdict:>13}[/{col}] {escape(c.text)}")
        if c.actual:
            out.print(f"{'':>14}actual: {escape(c.actual)}")
        if c.reason:
            out.print(f"{'':>14}why: {escape(c.reason)}")
        for n in c.notes:
            out.print(f"{'':>14}note: {escape(n)}")
    links = [m for m in res.mentions if m.method != "exact" and m.ref.kind in ("candidate", "person")]
    for m in links:
        out.print(f"linked {escape(m.text)!r} -> {escape(m.ref.name)} ({m.method}, confidence {m.confidence:.2f})")
    if res.unlinked_names:
        out.print("unlinked names: " + ", ".join(escape(n) for n in res.unlinked_names))
    if res.foreign_places:
        out.print("[red]foreign places:[/red] " + ", ".join(escape(n) for n in res.foreign_places))


@click.command("summary")
@click.option("--area", "area_id", default=None, help="An area id (e.g. tr.34); default the whole election.")
@click.option("--lang", type=click.Choice(["en", "tr"]), default="en", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Every sentence with the figures behind it.")
@_with_common
def summary(area_id: str | None, lang: str, as_json: bool, election_id: str | None, db: str | None, final: bool, dataset: str) -> None:
    """Write a short factual report of the election or of one area (live or final), in English or Turkish.

    Example: sandik summary --area tr.34 --lang tr
    """
    facts = _facts(db, election_id, final, dataset)
    s = summarize(facts, area_id, lang)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(s.to_dict(), ensure_ascii=False, indent=1))
        return
    click.echo(s.text)


COMMANDS = [check_article, summary]
