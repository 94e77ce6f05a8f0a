"""A PostgreSQL server for the tests: the machine's own at 127.0.0.1:5432 if it answers,
else one started here (installed from Debian's packages if need be). Never a skip."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as c:
            c.execute("select 1")
        return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        for v in sorted(base.iterdir(), reverse=True):
            if (v / "bin" / "initdb").exists():
                return v / "bin"
    return None


def _start_cluster() -> str:
    """Start a throwaway cluster of our own; install PostgreSQL if it is missing."""
    if _pg_bin() is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    bindir = _pg_bin()
    assert bindir is not None, "PostgreSQL could not be installed"
    data = Path(tempfile.mkdtemp(prefix="sandik-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    port = _free_port()
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "-l", str(data / "log"), "-w", "start"], check=True, capture_output=True)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    for _ in range(50):
        if _answers(url):
            return url
        time.sleep(0.2)
    raise RuntimeError("started PostgreSQL does not answer")


def server_url() -> str:
    url = os.environ.get("SANDIK_TEST_PG", DEFAULT_URL)
    if _answers(url):
        return url
    subprocess.run("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql 2>/dev/null | head -1) main start", shell=True, capture_output=True)
    if _answers(url):
        return url
    return _start_cluster()


def fresh_database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + "/" + name


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
