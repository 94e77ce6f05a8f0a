"""Short factual reports written from the data, in English or Turkish.

Every sentence is generated from figures and returned with them
(``SummarySentence.facts``) and with where they come from, so an API can show
the numbers behind each sentence and a test can recompute them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sandik.core.results import RaceResult
from sandik.errors import NotFound
from sandik.news.facts import Facts

Lang = Literal["en", "tr"]
TOP_RACES = 3  # the biggest races named in a national summary


@dataclass(frozen=True)
class SummarySentence:
    text: str
    facts: dict[str, Any]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Summary:
    election_id: str
    area_id: str
    lang: str
    mode: str
    sentences: list[SummarySentence] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "election_id": self.election_id,
            "area_id": self.area_id,
            "lang": self.lang,
            "mode": self.mode,
            "text": self.text,
            "sentences": [s.to_dict() for s in self.sentences],
        }


# --- number formatting --------------------------------------------------------------
def _int(n: int, lang: Lang) -> str:
    s = f"{n:,}"
    return s.replace(",", ".") if lang == "tr" else s


def _pct(x: float, lang: Lang, digits: int = 1) -> str:
    s = f"{100 * x:.{digits}f}"
    return f"%{s.replace('.', ',')}" if lang == "tr" else f"{s}%"


def _locative(name: str) -> str:
    """Turkish locative suffix with vowel harmony and consonant assimilation: İstanbul'da, İzmir'de, Tokat'ta."""
    low = name.replace("İ", "i").replace("I", "ı").lower()
    vowels = [c for c in low if c in "aeıioöuü"]
    back = bool(vowels) and vowels[-1] in "aıou"
    hard = low[-1:] in set("fstkçşhp")
    return f"{name}'{'t' if hard else 'd'}{'a' if back else 'e'}"


def _who(c: Any) -> str:
    return f"{c.name} ({c.party})" if c.name and c.name != c.party else (c.party or "independents")


# --- summaries ----------------------------------------------------------------------
def summarize(facts: Facts, area_id: str | None = None, lang: Lang = "en") -> Summary:
    """A short report of the election (or of one area), each sentence with its figures."""
    if lang not in ("en", "tr"):
        raise NotFound("language", lang)
    e = facts.election
    aid = area_id or e.root_id
    e.area(aid)  # NotFound for an unknown area
    out = Summary(e.id, aid, lang, facts.mode)
    if aid == e.root_id:
        out.sentences += _national(facts, lang)
    else:
        race = facts.main_race(aid)
        if race is None:
            raise NotFound("race for area", aid, election_id=e.id)
        out.sentences += _race(facts, facts.results[race.id], lang)
        out.sentences += _previous(facts, race.id, lang)
        note = facts.lexicon.race_notes.get(e.id, {}).get(race.id)
        if note and lang == "en":
            out.sentences.append(SummarySentence(note, {"note": True}, "sandik news lexicon (data README)"))
    return out


def _national(facts: Facts, lang: Lang) -> list[SummarySentence]:
    e = facts.election
    sents = []
    board = facts.scoreboards.get(facts.top_group)
    top = [r for r in facts.results.values() if r.office in e.info.top_offices]
    if board is not None:
        parts = [(line.party, line.won, line.leading) for line in board.lines]
        opened = sum(facts.boxes(r.race_id)[0] for r in top)
        total = sum(facts.boxes(r.race_id)[1] for r in top)
        f = {
            "group": board.group,
            "races": board.races,
            "reporting": board.reporting,
            "parties": {p: {"won": w, "leading": ld} for p, w, ld in parts},
            "boxes_opened": opened,
            "boxes_total": total,
        }
        live = any(ld for _, _, ld in parts)
        if lang == "en":
            if live:
                head = (
                    f"With {_pct(opened / total if total else 0, lang, 0)} of ballot boxes opened in the {board.races} {e.info.top_area_kind or 'area'} races, "
                )
                body = ", ".join(f"the {p} {'leads or won in' if i == 0 else ''} {w + ld}".replace("  ", " ") for i, (p, w, ld) in enumerate(parts[:5]))
                text = head + body + "."
            else:
                body = ", ".join(f"the {p} {w}" for p, w, _ in parts[1:])
                text = f"The {parts[0][0]} won {parts[0][1]} of {board.races} {e.info.top_area_kind or 'area'}s" + (f", {body}" if body else "") + "."
        else:
            if live:
                text = (
                    f"{board.races} ilde açılan sandık oranı {_pct(opened / total if total else 0, lang, 0)}: "
                    + ", ".join(f"{p} {w + ld} ilde önde" for p, w, ld in parts[:5])
                    + "."
                )
            else:
                text = ", ".join(f"{p} {w} ilde" for p, w, _ in parts) + f" kazandı ({board.races} il)."
        sents.append(SummarySentence(text, f, facts.source))
    biggest = sorted(top, key=lambda r: -r.registered_total)[:TOP_RACES]
    for r in biggest:
        sents += _race(facts, r, lang, short=True)
    if facts.electorate is not None and facts.mode == "final":
        t = facts.electorate
        f = {"registered": t.registered, "voters": t.voters, "turnout": round(t.voters / t.registered, 6)}
        if lang == "en":
            text = f"Turnout was {_pct(t.voters / t.registered, lang)}: {_int(t.voters, lang)} of {_int(t.registered, lang)} registered voters voted."
        else:
            text = f"Katılım oranı {_pct(t.voters / t.registered, lang)} oldu: {_int(t.registered, lang)} kayıtlı seçmenden {_int(t.voters, lang)} kişi oy kullandı."
        sents.append(SummarySentence(text, f, f"{e.id}: {t.source}"))
    if facts.previous is not None:
        flips = [c for c in facts.comparisons if c.office in e.info.top_offices and c.flipped]
        if flips:
            gains: dict[str, int] = {}
            for c in flips:
                gains[c.leader_now or ""] = gains.get(c.leader_now or "", 0) + 1
            best = max(gains.items(), key=lambda kv: (kv[1], kv[0]))
            year = facts.previous.info.date.year
            f = {"changed_hands": len(flips), "gains": gains, "previous_id": facts.previous.id}
            live = any(facts.counting(c.race_id) for c in flips)
            kind = e.info.top_area_kind or "area"
            if lang == "en" and live:
                text = f"Compared with {year}, another party leads in {len(flips)} {kind}s so far; the {best[0]} leads in {best[1]} of them."
            elif lang == "en":
                text = f"Compared with {year}, {len(flips)} {kind}s changed hands; the {best[0]} gained {best[1]} of them."
            elif live:
                text = f"{year} seçimine göre şu an {len(flips)} ilde başka bir parti önde; bunların {best[1]} tanesinde {best[0]} önde."
            else:
                text = f"{year} seçimine göre {len(flips)} ilde kazanan parti değişti; bunların {best[1]} tanesini {best[0]} kazandı."
            sents.append(SummarySentence(text, f, f"{facts.source}; {facts.previous.id}: official final results"))
    return sents


def _race(facts: Facts, r: RaceResult, lang: Lang, *, short: bool = False) -> list[SummarySentence]:
    sents = []
    area = facts.area_name(r.area_id)
    opened, total = facts.boxes(r.race_id)
    counting = facts.counting(r.race_id)
    src = f"{facts.source}, race {r.race_id}"
    if not r.candidates or r.leader is None:
        text = f"No votes have been counted yet in {area}." if lang == "en" else f"{_locative(area)} henüz oy sayılmadı."
        return [SummarySentence(text, {"race_id": r.race_id, "boxes_opened": opened, "boxes_total": total}, src)]
    a, b = r.candidates[0], (r.candidates[1] if len(r.candidates) > 1 else None)
    f: dict[str, Any] = {
        "race_id": r.race_id,
        "status": "counting" if counting else "complete",
        "boxes_opened": opened,
        "boxes_total": total,
        "leader": {"name": a.name, "party": a.party, "votes": a.votes, "share": round(a.share, 6)},
        "margin_votes": r.margin_votes,
    }
    if b is not None:
        f["runner_up"] = {"name": b.name, "party": b.party, "votes": b.votes, "share": round(b.share, 6)}
    if lang == "en":
        if counting:
            text = (
                f"With {_pct(opened / total if total else 0, lang, 0)} of ballot boxes opened in {area}, {_who(a)} leads"
                + (f" {_who(b)} by {_int(r.margin_votes, lang)} votes" if b else "")
                + f" ({_pct(a.share, lang)} to {_pct(b.share, lang) if b else '-'})."
            )
        else:
            text = (
                f"In {area}, {_who(a)} won with {_pct(a.share, lang)} of the vote"
                + (f", {_int(r.margin_votes, lang)} votes ahead of {_who(b)} with {_pct(b.share, lang)}" if b else "")
                + "."
            )
    else:
        if counting:
            text = (
                f"{_locative(area)} açılan sandık oranı {_pct(opened / total if total else 0, lang, 0)}: {_who(a)} {_pct(a.share, lang)} ile önde"
                + (f", {_who(b)} karşısındaki fark {_int(r.margin_votes, lang)} oy" if b else "")
                + "."
            )
        else:
            text = (
                f"{_locative(area)} {_who(a)} {_pct(a.share, lang)} oyla kazandı"
                + (f"; {_who(b)} karşısındaki fark {_int(r.margin_votes, lang)} oy" if b else "")
                + "."
            )
    sents.append(SummarySentence(text, f, src))
    if not short and r.turnout is not None:
        tf = {
            "race_id": r.race_id,
            "voters": r.total_voters,
            "registered": r.registered_opened,
            "turnout": round(r.turnout, 6),
            "valid": r.valid,
            "invalid": r.invalid,
        }
        if lang == "en":
            text = f"Turnout {'so far ' if counting else ''}was {_pct(r.turnout, lang)} ({_int(r.total_voters, lang)} of {_int(r.registered_opened, lang)} registered voters{' in opened boxes' if counting else ''}); {_int(r.invalid, lang)} votes were invalid."
        else:
            text = f"Katılım oranı {_pct(r.turnout, lang)} ({_int(r.registered_opened, lang)} kayıtlı seçmenden {_int(r.total_voters, lang)} kişi); geçersiz oy sayısı {_int(r.invalid, lang)}."
        sents.append(SummarySentence(text, tf, src))
    return sents


def _previous(facts: Facts, race_id: str, lang: Lang) -> list[SummarySentence]:
    if facts.previous is None or race_id not in facts.previous_results:
        return []
    then = facts.previous_results[race_id]
    now = facts.results[race_id]
    year = facts.previous.info.date.year
    w_then = then.leader_party
    w_now = now.leader_party
    if w_then is None:
        return []
    f = {"previous_id": facts.previous.id, "race_id": race_id, "winner_then": w_then, "margin_then_votes": then.margin_votes, "leader_now": w_now}
    same = w_then == w_now
    if lang == "en":
        counting = facts.counting(race_id)
        if same:
            tail = f"the {w_now} leads again." if counting else f"the {w_now} held it."
        else:
            tail = f"the {w_now} leads now." if counting else f"the {w_now} won it this time."
        text = f"In {year} the {w_then} won this race by {_int(then.margin_votes, lang)} votes; {tail}"
    else:
        text = f"{year} seçimini {w_then} {_int(then.margin_votes, lang)} oy farkla kazanmıştı; " + (
            ("bu kez de önde." if facts.counting(race_id) else "bu kez de kazandı.")
            if same
            else (f"bu kez {w_now} önde." if facts.counting(race_id) else f"bu kez {w_now} kazandı.")
        )
    src = f"{facts.previous.id}: official final results, race {race_id}"
    sents = [SummarySentence(text, f, src)]
    note = facts.lexicon.race_notes.get(facts.previous.id, {}).get(race_id)
    if note and lang == "en":
        sents.append(SummarySentence(note, {"note": True}, "sandik news lexicon (data README)"))
    return sents
