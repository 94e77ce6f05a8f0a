"""The tally sheet (Turkish: sandık sonuç tutanağı) of one box in one race.

Field names follow the numbered rows of the YSK form (methods.md §3.1):

    registered          K    voters on the box list (kayıtlı seçmen)
    voted_listed        (1)  listed voters who voted
    voted_by_law        (2)  unlisted voters voting by law (kanun gereği)
    total_voters        (3)  (1) + (2)
    ballots_used             envelopes/ballots used (kullanılan toplam oy) = valid + invalid
    valid_unchallenged  (7)  valid without objection (itirazsız geçerli)
    valid_challenged    (8)  valid after objection (itirazlı geçerli)
    valid               (9)  total valid
    invalid                  invalid (geçersiz)
    votes                    candidate id -> votes

Optional envelope and ballot reconciliation fields ((4), (5), received and
unused envelopes/ballots) are checked when present.

``source`` is "official" for the election board's copy, or the id of an
observer organisation. Only official sheets are counted in the tallies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from collections.abc import Sequence
from datetime import datetime

OFFICIAL = "official"

COUNT_FIELDS = (
    "registered",
    "voted_listed",
    "voted_by_law",
    "total_voters",
    "ballots_used",
    "valid_unchallenged",
    "valid_challenged",
    "valid",
    "invalid",
)
OPTIONAL_COUNT_FIELDS = (
    "envelopes_out",  # (4) envelopes taken out of the box
    "envelopes_destroyed",  # (5) surplus envelopes destroyed
    "envelopes_received",
    "envelopes_unused",
    "ballots_received",
    "ballots_unused",
)

# Human names of fields, for messages a clerk reads.
FIELD_LABELS = {
    "registered": "registered voters (K)",
    "voted_listed": "listed voters who voted (1)",
    "voted_by_law": "voters by law (2)",
    "total_voters": "total voters (3)",
    "ballots_used": "ballots used",
    "valid_unchallenged": "valid, unchallenged (7)",
    "valid_challenged": "valid, challenged (8)",
    "valid": "valid votes (9)",
    "invalid": "invalid votes",
    "envelopes_out": "envelopes out of the box (4)",
    "envelopes_destroyed": "surplus envelopes destroyed (5)",
    "envelopes_received": "envelopes received",
    "envelopes_unused": "envelopes unused",
    "ballots_received": "ballots received",
    "ballots_unused": "ballots unused",
}


@dataclass(frozen=True, slots=True)
class TallySheet:
    box_id: str
    race_id: str
    registered: int
    voted_listed: int
    voted_by_law: int
    total_voters: int
    ballots_used: int
    valid_unchallenged: int
    valid_challenged: int
    valid: int
    invalid: int
    votes: dict[str, int]
    source: str = OFFICIAL
    submitted_by: str = ""
    submitted_at: datetime | None = None
    reason: str = ""  # why this version was submitted (corrections)
    image_ref: str = ""
    image_sha256: str = ""
    envelopes_out: int | None = None
    envelopes_destroyed: int | None = None
    envelopes_received: int | None = None
    envelopes_unused: int | None = None
    ballots_received: int | None = None
    ballots_unused: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        """Versions of a sheet are kept per (box, race, source)."""
        return (self.box_id, self.race_id, self.source)

    def content_hash(self, candidate_order: Sequence[str] | None = None) -> str:
        """Hash of what the sheet says (not who sent it or when): identical resubmissions are no-ops.

        With ``candidate_order`` (the race's candidates, when the sheet names exactly
        those) the votes are hashed in that order, else sorted by candidate id; either
        way the same sheet always hashes the same, because which case applies depends
        only on the sheet and its race.
        """
        s = self
        votes = s.votes
        if candidate_order is not None:
            vtext = ",".join([str(votes[c]) for c in candidate_order])
        else:
            vtext = ",".join([f"{k}={v!r}" for k, v in sorted(votes.items())])
        return content_digest(s, vtext)


def content_digest(s: TallySheet, votes_text: str) -> str:
    text = _HASH_FORMAT % (
        s.box_id, s.race_id, s.source,
        s.registered, s.voted_listed, s.voted_by_law, s.total_voters, s.ballots_used,
        s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid,
        s.envelopes_out, s.envelopes_destroyed, s.envelopes_received, s.envelopes_unused, s.ballots_received, s.ballots_unused,
        s.image_sha256, votes_text,
    )  # fmt: skip
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def clean_digest(s: TallySheet, votes_text: str) -> str:
    """``content_digest`` of a sheet without any optional count (the bulk fast path), in fewer steps."""
    text = _CLEAN_FORMAT % (
        s.box_id, s.race_id, s.source,
        s.registered, s.voted_listed, s.voted_by_law, s.total_voters, s.ballots_used,
        s.valid_unchallenged, s.valid_challenged, s.valid, s.invalid,
        s.image_sha256, votes_text,
    )  # fmt: skip
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_HASH_FORMAT = "|".join(["%r"] * 19 + ["%s"])
_CLEAN_FORMAT = "|".join(["%r"] * 12 + ["None"] * 6 + ["%r", "%s"])
