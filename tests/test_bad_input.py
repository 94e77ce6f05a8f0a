"""Malformed files: a clear error per row, good rows still ingested, bad rows quarantined."""

import json
import random

import pytest
from click.testing import CliRunner

from sandik.cli import main
from sandik.errors import FormatError
from sandik.formats import election_file
from sandik.formats.sheet_files import read_sheets, write_csv
from sandik.ingest.pipeline import BadRow, Ingestor
from tests.factories import make_election, make_sheet


@pytest.fixture
def setup(tmp_path):
    e = make_election(11)
    rng = random.Random(11)
    sheets = [make_sheet(e, rid, b, rng) for rid, bs in e.race_boxes.items() for b in bs.tolist()]
    ef = tmp_path / "e.election.json.gz"
    election_file.write(e, ef)
    db = str(tmp_path / "db.sqlite")
    r = CliRunner().invoke(main, ["load", str(ef), "--db", db])
    assert r.exit_code == 0, r.output
    return e, sheets, db, tmp_path


def _csv(sheets):
    import io

    buf = io.StringIO()
    write_csv(sheets, buf)
    return buf.getvalue()


def test_missing_column_refuses_the_file():
    with pytest.raises(FormatError) as ei:
        list(read_sheets(b"box_id,race_id,votes:A\nb,r,1\n", name="x.csv"))
    assert "missing column" in str(ei.value) and "x.csv" in str(ei.value)


def test_utf16_file_is_refused_with_a_hint():
    with pytest.raises(FormatError, match="UTF-16"):
        list(read_sheets("box_id,race_id\n".encode("utf-16"), name="x.csv"))


def test_bad_rows_are_named_and_good_rows_pass(setup):
    e, sheets, db, tmp = setup
    text = _csv(sheets[:6]).splitlines()
    header, rows = text[0], text[1:]
    cols = header.split(",")
    i_valid = cols.index("valid")
    broken = []
    r = rows[1].split(",")
    r[i_valid] = "abc"  # not a number
    broken.append(",".join(r))
    broken.append(rows[2][: len(rows[2]) // 2])  # truncated line
    r = rows[3].split(",")
    r[cols.index("invalid")] = "-4"  # negative
    broken.append(",".join(r))
    r = rows[4].split(",")
    r[0] = "x.99.nowhere.1"  # unknown box
    broken.append(",".join(r))
    body = "\n".join([header, rows[0], *broken, rows[5]]).encode() + b"\n" + b"\xff\xfe broken bytes\n"
    f = tmp / "in.csv"
    f.write_bytes(body)
    res = CliRunner().invoke(main, ["ingest", str(f), "--db", db, "--json"])
    assert res.exit_code == 1
    rep = json.loads(res.output)
    assert rep["accepted"] == 2 and rep["quarantined"] == 5
    messages = " | ".join(m for r in rep["rejections"] for m in r["messages"])
    assert "in.csv:3" in messages and "'valid'" in messages and "abc" in messages
    assert "truncated" in messages
    assert "E1" in {rule for r in rep["rejections"] for rule in r["rules"]}
    assert "x.99.nowhere.1" in messages
    assert "UTF-8" in messages
    q = CliRunner().invoke(main, ["quarantine", "--db", db, "--json"])
    assert len(json.loads(q.output)) == 5


def test_unknown_candidate_and_box_of_another_race(setup):
    e, sheets, db, tmp = setup
    s = sheets[0]
    d = {"box_id": s.box_id, "race_id": "x.02:metro", "registered": s.registered, "voted_listed": s.voted_listed, "voted_by_law": s.voted_by_law,
         "total_voters": s.total_voters, "ballots_used": s.ballots_used, "valid_unchallenged": s.valid_unchallenged, "valid_challenged": s.valid_challenged,
         "valid": s.valid, "invalid": s.invalid, "votes": {**s.votes, "ZZ": 0}}  # fmt: skip
    f = tmp / "in.ndjson"
    f.write_text(json.dumps(d) + "\n{not json\n")
    res = CliRunner().invoke(main, ["ingest", str(f), "--db", db, "--json"])
    rep = json.loads(res.output)
    assert res.exit_code == 1 and rep["quarantined"] == 2
    rules = {rule for r in rep["rejections"] for rule in r["rules"]}
    assert {"S3", "S4", "FORMAT"} <= rules


def test_sums_that_do_not_add_up(setup):
    e, sheets, db, tmp = setup
    s = sheets[0]
    items = list(read_sheets(_csv([s]).replace(f",{s.valid},{s.invalid},", f",{s.valid + 1},{s.invalid},", 1).encode(), name="a.csv"))
    assert not any(isinstance(i, BadRow) for i in items)
    from sandik.store.repository import open_store

    ing = Ingestor(open_store(db), e.id)
    rep = ing.submit(items)
    assert rep.quarantined == 1
    assert {"E5", "E6", "E7"} <= set(rep.rejections[0].rules)
