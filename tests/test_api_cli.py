"""`sandik token create|list|revoke` and `sandik serve` options, on a real SQLite file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sandik.auth.tokens import AuthError, TokenStore
from sandik.cli import main
from sandik.store.repository import open_store
from tests.web_support import elections


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "cli.sqlite")
    st = open_store(path)
    for e in elections():
        st.save_election(e)
    st.close()
    return path


def test_token_create_list_revoke(db):
    r = CliRunner()
    res = r.invoke(main, ["token", "create", "--db", db, "--name", "Kadıköy 1", "--role", "clerk", "--area", "x.01.d1"])
    assert res.exit_code == 0, res.output
    secret = res.stdout.strip().splitlines()[-1]
    assert secret.startswith("sdk_")
    st = open_store(db)
    tok = TokenStore(st).verify(secret)
    assert tok.role == "clerk" and tok.areas == ("x.01.d1",) and tok.name == "Kadıköy 1"
    listed = json.loads(r.invoke(main, ["token", "list", "--db", db, "--json"]).stdout)
    assert [t["id"] for t in listed] == [tok.id] and secret.split("_", 2)[2] not in json.dumps(listed)
    assert r.invoke(main, ["token", "revoke", "--db", db, tok.id]).exit_code == 0
    with pytest.raises(AuthError, match="revoked"):
        TokenStore(st).verify(secret)
    assert "revoked" in r.invoke(main, ["token", "list", "--db", db]).stdout
    st.close()


def test_token_create_refuses_bad_requests(db):
    r = CliRunner()
    bad_area = r.invoke(main, ["token", "create", "--db", db, "--name", "x", "--role", "clerk", "--area", "nowhere"])
    assert bad_area.exit_code != 0 and "nowhere" in bad_area.output
    no_area = r.invoke(main, ["token", "create", "--db", db, "--name", "x", "--role", "clerk"])
    assert no_area.exit_code != 0 and "--area" in no_area.output
    no_org = r.invoke(main, ["token", "create", "--db", db, "--name", "x", "--role", "observer"])
    assert no_org.exit_code != 0 and "--org" in no_org.output
    assert r.invoke(main, ["token", "revoke", "--db", db, "nope"]).exit_code != 0


def test_serve_and_demo_document_their_options():
    r = CliRunner()
    serve = r.invoke(main, ["serve", "--help"]).stdout
    for opt in ("--host", "--port", "--db", "--election", "--replay", "--speed", "--follow"):
        assert opt in serve
    demo = r.invoke(main, ["demo", "--help"]).stdout
    assert "--serve / --no-serve" in demo and "--exit-when-done" in demo
