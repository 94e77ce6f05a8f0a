"""``sandik serve`` (the API and website) and ``sandik token create|list|revoke``."""

from __future__ import annotations

import gc
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import click

from sandik.core.sheet import TallySheet
from sandik.ingest.pipeline import IngestReport
from sandik.live.gc_steward import GcSteward
from sandik.live.service import LiveService, ServiceRegistry
from sandik.store.repository import ENV_DB, Store, open_store

SWITCH_INTERVAL = 0.001

db_option = click.option("--db", envvar=ENV_DB, default="sandik.sqlite", show_default=True, help="SQLite file or postgresql:// URL (env SANDIK_DB).")


class ServiceIngestor:
    """What ``cli.run_replay`` needs from an ingestor, backed by a live service's single writer."""

    def __init__(self, svc: LiveService) -> None:
        self.svc = svc
        self.election = svc.election
        self._frozen = False

    @property
    def tally(self) -> Any:
        return self.svc.tally

    def submit(self, items: list[TallySheet], *, origin: str = "", submitted_by: str = "") -> IngestReport:
        if not self._frozen:
            # The replay holds the whole night (337,670 sheets) in memory for its duration:
            # frozen out of the cyclic GC, a full collection no longer stalls the server for ~1 s.
            gc.freeze()
            self._frozen = True
        return self.svc.submit_sync(items, origin=origin, submitted_by=submitted_by)


def _server(st: Store, reg: ServiceRegistry, host: str, port: int, election_id: str | None, log_level: str = "warning", fd: int | None = None) -> Any:
    import uvicorn

    from sandik.api import Settings, create_app

    # The event loop shares the interpreter lock with the writer thread(s); a 1 ms switch
    # interval (default 5 ms) lets it take the lock back sooner, which bounds read latency
    # while sheets are being ingested, at a small cost in ingest throughput.
    sys.setswitchinterval(SWITCH_INTERVAL)
    # A night-long process: keep the cyclic GC's full walks (50-100 ms pauses) off its heap.
    GcSteward.start_once()
    app = create_app(Settings(db=str(st.engine.url), election_id=election_id), store=st, registry=reg)
    where: dict[str, Any] = {"fd": fd} if fd is not None else {"host": host, "port": port}  # fd: a worker of --workers
    return uvicorn.Server(uvicorn.Config(app, **where, log_level=log_level, access_log=False, timeout_graceful_shutdown=2))


def _wait_started(server: Any, thread: threading.Thread) -> None:
    while not server.started:
        if not thread.is_alive():
            raise click.ClickException("the web server did not start (is the port in use?)")
        time.sleep(0.05)


def serve_with_replay(st: Store, *, dataset: str, speed: str, seed: int, host: str, port: int, quiet: bool = False, linger: bool = True, after_replay: Any = None) -> IngestReport:
    """Load the dataset, start the server in a thread, replay the night into the server's live service.

    Used by ``sandik serve --replay`` and ``sandik demo``. Returns the replay's report
    after the server stops (Ctrl-C), or at once when ``linger`` is False.
    """
    from sandik.cli import run_replay
    from sandik.datasets import registry

    elections = registry.get(dataset).elections()
    for e in elections:
        st.save_election(e)
    main_id = elections[-1].id
    reg = ServiceRegistry(st)
    svc = reg.get(main_id)
    server = _server(st, reg, host, port, main_id)
    t = threading.Thread(target=server.run, name="sandik-web", daemon=True)
    t.start()
    try:
        _wait_started(server, t)
        click.echo(f"sandik is serving {main_id} at http://{host}:{port}/  (API: http://{host}:{port}/docs)", err=True)
        # Project from the first sheet on, whether or not anyone is watching yet: otherwise the worker
        # starts with the first reader of projections or of the live stream, and the call log of the
        # night (when each race was called, on what model state) begins only then.
        from sandik.live.projections import worker_for

        worker_for(svc)
        report = run_replay(st, dataset, speed=speed, seed=seed, quiet=quiet, ingestor=ServiceIngestor(svc))
        if after_replay:
            after_replay()
        if linger:
            click.echo(f"replay finished; still serving at http://{host}:{port}/ (Ctrl-C to stop)", err=True)
            while t.is_alive():
                t.join(0.5)
        return report
    except KeyboardInterrupt:
        return IngestReport()
    finally:
        server.should_exit = True
        t.join(10)
        reg.stop()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--election", "election_id", default=None, help="The election '/api/elections/current' and the website show (default: the most recent).")
@click.option("--replay", "replay_dataset", default=None, help="Also replay this dataset's night into the server (e.g. tr-2024).")
@click.option("--speed", default="600", show_default=True, help="Replay speed: 'max' or N times real time.")
@click.option("--seed", default=2024, show_default=True)
@click.option("--quiet", is_flag=True, help="Replay without the live tables.")
@click.option("--follow", is_flag=True, help="Also count sheets other processes store (sandik ingest/replay, other servers): poll the log every 0.1 s.")
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes on one PostgreSQL (each follows the others' writes); see docs/deployment.md.")
@click.option("--fd", default=None, type=int, hidden=True, help="Serve on this inherited socket (a worker of --workers).")
@click.option("--worker-id", default=None, type=int, hidden=True)
@db_option
def serve(host: str, port: int, election_id: str | None, replay_dataset: str | None, speed: str, seed: int, quiet: bool, follow: bool, workers: int, fd: int | None, worker_id: int | None, db: str) -> None:
    """Serve the public API (/api, OpenAPI at /docs), the write API and the live website.

    \b
    sandik serve --db results.sqlite --port 8000
    sandik serve --replay tr-2024 --speed 600     # replay the 2024 night into the live server
    sandik serve --follow & sandik replay tr-2024  # the replay writes, the server follows the log
    """
    st = open_store(db)
    if workers != 1:
        from sandik.errors import SandikError
        from sandik.live.workers import check_workers, supervise

        try:
            check_workers(workers, st.dialect)
        except SandikError as exc:
            raise click.ClickException(str(exc)) from exc
        if replay_dataset:
            raise click.ClickException("--replay runs in one process: replay with `sandik replay` against the same database instead")
        st.close()
        supervise(workers, host, port, db, election_id, echo=lambda m: click.echo(m, err=True))
        return
    if replay_dataset:
        serve_with_replay(st, dataset=replay_dataset, speed=speed, seed=seed, host=host, port=port, quiet=quiet)
        return
    reg = ServiceRegistry(st, follow=follow)
    server = _server(st, reg, host, port, election_id, log_level="info" if fd is None else "warning", fd=fd)
    if fd is None:
        click.echo(f"sandik: http://{host}:{port}/  (API docs: /docs)", err=True)
    try:
        server.run()
    finally:
        reg.stop()


@click.group()
def token() -> None:
    """API tokens: create (the secret is printed once), list, revoke."""


@token.command("create")
@click.option("--name", required=True, help="Who holds it (kept with every sheet and audit entry).")
@click.option("--role", type=click.Choice(["clerk", "observer", "admin"]), required=True)
@click.option("--area", "areas", multiple=True, help="Clerks: an area id they may write under (repeat for several), e.g. tr.34.kadikoy.")
@click.option("--org", "organisation", default=None, help="Observers: the organisation (their sheets' source).")
@click.option("--election", "election_id", default=None, help="Limit the token to one election (areas are checked against it).")
@click.option("--expires-in", "expires_hours", type=float, default=None, help="Hours until it expires (default: never).")
@db_option
def token_create(name: str, role: str, areas: tuple[str, ...], organisation: str | None, election_id: str | None, expires_hours: float | None, db: str) -> None:
    """Create a token and print it (only its hash is stored: it cannot be shown again)."""
    from sandik.auth.tokens import AuthError, TokenStore

    st = open_store(db)
    if areas and election_id is None:
        election_id_check = st.default_election_id()
        e = st.election(election_id_check)
        for a in areas:
            e.area(a)
    try:
        tok, secret = TokenStore(st).create(
            name=name, role=role, areas=list(areas), organisation=organisation, election_id=election_id, expires_in=timedelta(hours=expires_hours) if expires_hours else None
        )
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {tok.role} token {tok.id} for {tok.name}" + (f", areas {', '.join(tok.areas)}" if tok.areas else "") + (f", expires {tok.expires_at}" if tok.expires_at else ""), err=True)
    click.echo(secret)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@db_option
def token_list(as_json: bool, db: str) -> None:
    """List tokens (never their secrets)."""
    import json

    from sandik.auth.tokens import TokenStore

    toks = TokenStore(open_store(db)).list()
    if as_json:
        click.echo(json.dumps([t.to_dict() for t in toks], ensure_ascii=False))
        return
    for t in toks:
        state = "revoked" if t.revoked_at else (f"expires {t.expires_at}" if t.expires_at else "active")
        extra = f" areas={','.join(t.areas)}" if t.areas else (f" org={t.organisation}" if t.organisation else "")
        click.echo(f"{t.id}  {t.role:8}  {t.name}{extra}  {state}")


@token.command("revoke")
@click.argument("token_id")
@db_option
def token_revoke(token_id: str, db: str) -> None:
    """Revoke a token at once (the server checks revocation on every request)."""
    from sandik.auth.tokens import AuthError, TokenStore

    try:
        tok = TokenStore(open_store(db)).revoke(token_id)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {tok.id} ({tok.name}) at {tok.revoked_at}")


COMMANDS = [serve, token]
