from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from sandik.store.repository import Store, open_store
from tests import postgres

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> str:
    return postgres.server_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    """A fresh, migrated store on a real SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        st = open_store(str(tmp_path / "t.sqlite"))
        yield st
        st.close()
    else:
        server = request.getfixturevalue("pg_server")
        name = f"sandik_t_{os.getpid()}_{next(_counter)}"
        url = postgres.fresh_database(server, name)
        st = open_store(url)
        yield st
        st.close()
        postgres.drop_database(server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database URL for tests that run sandik in other processes: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "db.sqlite")
    else:
        server = request.getfixturevalue("pg_server")
        name = f"sandik_u_{os.getpid()}_{next(_counter)}"
        yield postgres.fresh_database(server, name)
        postgres.drop_database(server, name)
