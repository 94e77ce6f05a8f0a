"""The command line on a small election: every command has help; JSON outputs have the promised shape."""

import json
import random

import pytest
from click.testing import CliRunner

from sandik.cli import main
from sandik.formats import election_file
from sandik.formats.sheet_files import write_ndjson
from tests.factories import make_election, make_sheet


def test_every_command_has_help():
    r = CliRunner()
    assert r.invoke(main, ["--help"]).exit_code == 0
    for name, cmd in main.commands.items():
        res = r.invoke(main, [name, "--help"])
        assert res.exit_code == 0, name
        assert (cmd.help or "").strip(), f"command {name} has no help text"


@pytest.fixture
def db(tmp_path):
    e = make_election(5)
    ef = tmp_path / "e.election.json.gz"
    election_file.write(e, ef)
    db = str(tmp_path / "db.sqlite")
    r = CliRunner()
    assert r.invoke(main, ["init", "--db", db]).exit_code == 0
    assert r.invoke(main, ["load", str(ef), "--db", db]).exit_code == 0
    rng = random.Random(5)
    sheets = [make_sheet(e, rid, b, rng) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    f = tmp_path / "s.ndjson"
    with open(f, "w") as fh:
        write_ndjson(sheets, fh)
    res = r.invoke(main, ["ingest", str(f), "--db", db])
    assert res.exit_code == 0, res.output
    return e, sheets, db


def test_races_json(db):
    e, _, path = db
    res = CliRunner().invoke(main, ["races", "--json", "--db", path])
    rows = json.loads(res.output)
    assert {r["id"] for r in rows} == set(e.races)
    assert set(rows[0]) >= {"id", "office", "area_id", "area_name", "election_id"}


def test_results_json_equals_sum_of_sheets(db):
    e, sheets, path = db
    rid = "x.01:metro"
    res = json.loads(CliRunner().invoke(main, ["results", "--race", rid, "--json", "--db", path]).output)
    mine = [s for s in sheets if s.race_id == rid]
    assert res["boxes_opened"] == res["boxes_total"] == len(mine)
    assert res["valid"] == sum(s.valid for s in mine)
    assert res["invalid"] == sum(s.invalid for s in mine)
    assert res["votes_cast"] == sum(s.total_voters for s in mine)
    assert res["registered"] == sum(s.registered for s in mine)
    for c in res["candidates"]:
        assert c["votes"] == sum(s.votes[c["id"]] for s in mine)
        assert {"name", "party"} <= set(c)


def test_scoreboard_and_area_and_exports(db, tmp_path):
    e, sheets, path = db
    r = CliRunner()
    sb = json.loads(r.invoke(main, ["results", "--scoreboard", "--json", "--db", path]).output)
    metro = next(b for b in sb["scoreboards"] if b["group"] == "metro_mayor")
    assert sum(p["won"] for p in metro["parties"]) == metro["races"] == 2
    area = json.loads(r.invoke(main, ["results", "--area", "x.01.d1", "--json", "--db", path]).output)
    assert {a["race_id"] for a in area} == {"x.01:metro", "x.01.d1:mayor"}
    assert all(a["area_id"] == "x.01.d1" for a in area)
    out = tmp_path / "r.csv"
    assert r.invoke(main, ["export", "--db", path, "-o", str(out)]).exit_code == 0
    assert out.read_text().count("\n") > len(e.races)
    hist = json.loads(r.invoke(main, ["history", sheets[0].box_id, "--json", "--db", path]).output)
    assert {h["race_id"] for h in hist} == {s.race_id for s in sheets if s.box_id == sheets[0].box_id}


def test_unknown_race_is_a_clear_error(db):
    _, _, path = db
    res = CliRunner().invoke(main, ["results", "--race", "nope", "--db", path])
    assert res.exit_code != 0 and "unknown race 'nope'" in res.output
