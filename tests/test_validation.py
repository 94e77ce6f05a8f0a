import random
from dataclasses import replace

import pytest

from sandik.core.validation import RULES, has_errors, validate
from tests.factories import make_election, make_sheet

E = make_election(3)
RACE = "x.01.d1:mayor"
BOX = int(E.race_boxes[RACE][0])


def good():
    s = make_sheet(E, RACE, BOX, random.Random(1))
    # keep turnout under the W3 threshold so a clean sheet has no issue at all
    assert not validate(s, E), validate(s, E)
    return s


def rules(s, **kw):
    return {i.rule for i in validate(s, E, **kw)}


def test_clean_sheet_has_no_issue():
    assert validate(good(), E) == []


@pytest.mark.parametrize(
    "change, rule",
    [
        (lambda s: replace(s, race_id="nope"), "S1"),
        (lambda s: replace(s, box_id="nope"), "S2"),
        (lambda s: replace(s, box_id=E.box_ids[int(E.race_boxes["x.01.d2:mayor"][0])], registered=int(E.box_registered[int(E.race_boxes["x.01.d2:mayor"][0])])), "S3"),
        (lambda s: replace(s, votes={**s.votes, "ZZ": 0}), "S4"),
        (lambda s: replace(s, votes={k: v for k, v in list(s.votes.items())[1:]}), "S5"),
        (lambda s: replace(s, registered=s.registered + 1), "S6"),
        (lambda s: replace(s, invalid=-1), "E1"),
        (lambda s: replace(s, voted_listed=s.registered + 1, total_voters=s.registered + 1 + s.voted_by_law), "E2"),
        (lambda s: replace(s, total_voters=s.total_voters + 1), "E3"),
        (lambda s: replace(s, envelopes_out=s.total_voters + 5, envelopes_destroyed=0), "E4"),
        (lambda s: replace(s, valid_unchallenged=s.valid_unchallenged + 1), "E5"),
        (lambda s: replace(s, votes={**s.votes, next(iter(s.votes)): s.votes[next(iter(s.votes))] + 1}), "E6"),
        (lambda s: replace(s, ballots_used=s.ballots_used + 1), "E7"),
    ],
)
def test_each_hard_rule_fires(change, rule):
    issues = validate(change(good()), E)
    assert rule in {i.rule for i in issues}
    assert has_errors(issues)
    msg = next(i for i in issues if i.rule == rule)
    assert msg.box_id and msg.race_id and RULES[rule] in msg.message


def test_e8_ballots_used_above_voters():
    s = good()
    s2 = replace(s, ballots_used=s.total_voters + 1, invalid=s.invalid + 1)
    assert "E8" in rules(s2)


def test_e4_destroyed_envelopes_reconcile():
    s = good()
    ok = replace(s, envelopes_out=s.total_voters + 2, envelopes_destroyed=2)
    assert "E4" not in rules(ok)
    bad = replace(s, envelopes_out=s.total_voters + 2, envelopes_destroyed=1)
    assert "E4" in rules(bad)


def test_warnings_are_not_errors():
    s = good()
    K = s.registered
    high = replace(s, voted_listed=K, total_voters=K + s.voted_by_law, ballots_used=K + s.voted_by_law, invalid=0,
                   valid=K + s.voted_by_law, valid_unchallenged=K + s.voted_by_law, valid_challenged=0,
                   votes={**{k: 0 for k in s.votes}, next(iter(s.votes)): K + s.voted_by_law})  # fmt: skip
    issues = validate(high, E)
    assert {i.rule for i in issues} == {"W3"}
    assert not has_errors(issues)
    assert "W5" in rules(s, other_race_voters={"x.01:metro": s.total_voters + 40})
    assert "W5" not in rules(s, other_race_voters={"x.01:metro": s.total_voters})
    # below both thresholds (a 1-voter difference in a box of more than 50 voters) is no warning
    big = replace(s, voted_listed=s.registered - 1, total_voters=s.registered - 1 + s.voted_by_law, ballots_used=s.registered - 1 + s.voted_by_law,
                  invalid=0, valid=s.registered - 1 + s.voted_by_law, valid_unchallenged=s.registered - 1 + s.voted_by_law, valid_challenged=0,
                  votes={**{k: 0 for k in s.votes}, next(iter(s.votes)): s.registered - 1 + s.voted_by_law})  # fmt: skip
    assert big.total_voters > 60
    assert "W5" not in rules(big, other_race_voters={"x.01:metro": big.total_voters + 1})
    w1 = replace(s, envelopes_received=s.total_voters + 10, envelopes_unused=5)
    assert "W1" in rules(w1)


def test_message_names_box_race_field_and_values():
    s = good()
    bad = replace(s, valid=s.valid + 7, valid_unchallenged=s.valid_unchallenged + 7, ballots_used=s.ballots_used + 7)
    e6 = next(i for i in validate(bad, E) if i.rule == "E6")
    assert s.box_id in e6.message and RACE in e6.message
    assert str(s.valid + 7) in e6.message
    assert e6.values == {"sum_votes": s.valid, "valid": s.valid + 7}


# --- the bulk fast path must agree with validate -------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sandik.core.validation import is_clean  # noqa: E402

FIELDS = ("registered", "voted_listed", "voted_by_law", "total_voters", "ballots_used", "valid_unchallenged", "valid_challenged", "valid", "invalid")


@settings(max_examples=400, deadline=None)
@given(seed=st.integers(0, 10**6), field=st.sampled_from(FIELDS + ("votes", "none", "float", "envelopes")), delta=st.integers(-20, 20))
def test_is_clean_implies_validate_finds_nothing(seed, field, delta):
    rng = random.Random(seed)
    rid = rng.choice(list(E.races))
    b = int(rng.choice(E.race_boxes[rid].tolist()))
    s = make_sheet(E, rid, b, rng)
    if field in FIELDS:
        s = replace(s, **{field: getattr(s, field) + delta})
    elif field == "votes":
        k = rng.choice(list(s.votes))
        s = replace(s, votes={**s.votes, k: s.votes[k] + delta})
    elif field == "float":
        s = replace(s, valid=float(s.valid))
    elif field == "envelopes":
        s = replace(s, envelopes_out=s.total_voters + delta)
    clean = is_clean(s, E.races[rid], int(E.box_registered[b]))
    issues = validate(s, E)
    if clean:
        assert issues == []
    # and the converse for sheets the fast path can judge: no issue means clean
    if not issues and field not in ("float", "envelopes"):
        assert clean


# --- the C fast path decides exactly like the Python reference ------------------------------------
from sandik.core import validation as _validation  # noqa: E402
from sandik.core.sheet import clean_digest  # noqa: E402
from sandik.core.validation import clean_votes  # noqa: E402

ODD = ("none", "bool", "float", "numpy", "huge", "negative", "reorder", "extra", "missing", "subclass", "turnout98", "gap2pct", "envelopes", "byLaw10pct")


class _Votes(dict):
    pass


def _odd(s, race, kind, rng):
    import numpy as np

    k = rng.choice(list(s.votes))
    if kind == "bool":
        return replace(s, votes={**s.votes, k: bool(s.votes[k] % 2)})
    if kind == "float":
        return replace(s, votes={**s.votes, k: float(s.votes[k])})
    if kind == "numpy":
        return replace(s, valid=np.int64(s.valid))
    if kind == "huge":
        return replace(s, registered=2**60, voted_listed=2**60)
    if kind == "negative":
        return replace(s, votes={**s.votes, k: -1})
    if kind == "reorder":
        return replace(s, votes=dict(reversed(list(s.votes.items()))))
    if kind == "extra":
        return replace(s, votes={**s.votes, "ZZ": 0})
    if kind == "missing":
        return replace(s, votes={c: v for c, v in s.votes.items() if c != k})
    if kind == "subclass":
        return replace(s, votes=_Votes(s.votes))
    if kind == "turnout98":  # (3) exactly 98% of K: a warning in both
        K = 100
        return replace(s, registered=K, voted_listed=98, voted_by_law=0, total_voters=98, ballots_used=98, valid_unchallenged=98, valid_challenged=0, valid=98, invalid=0, votes={c: (98 if i == 0 else 0) for i, c in enumerate(s.votes)})
    if kind == "gap2pct":  # |(3) - used| exactly 2% of (3)
        return replace(s, voted_listed=s.voted_listed + 2, total_voters=100, ballots_used=98) if s.total_voters else s
    if kind == "envelopes":
        return replace(s, envelopes_out=s.total_voters)
    if kind == "byLaw10pct":
        return replace(s, voted_by_law=10, voted_listed=90, total_voters=100, ballots_used=100)
    return s


def test_the_c_module_was_built():
    # The machines sandik is built on have a C compiler (make install compiles it): if this fails,
    # bulk ingest silently runs the slower pure-Python check. See hatch_build.py.
    assert _validation._c_check_clean is not None


@settings(max_examples=600, deadline=None)
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(ODD), field=st.sampled_from(FIELDS), delta=st.integers(-3, 3))
def test_c_fast_path_agrees_with_the_python_reference(seed, kind, field, delta):
    c_check = _validation._c_check_clean
    rng = random.Random(seed)
    rid = rng.choice(list(E.races))
    race = E.races[rid]
    b = int(rng.choice(E.race_boxes[rid].tolist()))
    reg = int(E.box_registered[b])
    s = make_sheet(E, rid, b, rng)
    assert c_check(s, race.candidate_ids, reg) is not NotImplemented  # an ordinary sheet is decided in C
    s = _odd(s, race, kind, rng)
    if delta:
        s = replace(s, **{field: getattr(s, field) + delta})
    py = clean_votes(s, race, reg)
    c = c_check(s, race.candidate_ids, reg)
    if c is NotImplemented:
        assert kind in ("bool", "float", "numpy", "huge", "reorder", "extra", "missing", "subclass"), kind
        return
    if py is None:
        assert c is None, (kind, field, delta)
    else:
        assert c == (py, ",".join(map(str, py))), (kind, field, delta)
        # the bulk path's hash of a clean sheet is the one every other path computes for it
        assert clean_digest(s, c[1]) == s.content_hash(race.candidate_index)
