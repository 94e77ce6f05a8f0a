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
