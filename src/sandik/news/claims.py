"""Claims: find the checkable statements of an article and give each a verdict.

Rule-based, sentence by sentence, English and Turkish. Quoted speech is cut
out first (it is someone's statement, not the article's claim) and checked
for nothing. What is left of a sentence is searched for, in order:

- counts of races won ("won 36 of Turkey's 81 provinces", "81 ilin 35'ini");
- margins ("by more than 1 million votes", "1 milyondan fazla oy farkıyla");
- votes and shares of a candidate or party;
- turnout, registered voters ("61 million people became eligible"), votes cast;
- ballot boxes opened ("More than 95% of ballot boxes were opened");
- who won, leads, lost or held where, now or in the previous election;
- strongholds (a vague "many strongholds" is reported with the figures but
  is not checkable).

A sentence with none of these becomes one ``not_checkable`` claim with the
reason (quote, population figure, a person who is not a candidate, opinion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sandik.core.names import fold
from sandik.core.results import STRONGHOLD_MARGIN_POINTS, RaceResult
from sandik.news.facts import Facts
from sandik.news.linking import Linker, Mention
from sandik.news.text import Number, Span, compare, language, mask, numbers, quotes, sentences

Verdict = Literal["supported", "contradicted", "not_checkable"]
ACTORS = ("candidate", "party", "person")


@dataclass
class Claim:
    text: str
    start: int
    end: int
    kind: str
    verdict: Verdict
    actual: str | None = None
    entities: list[Mention] = field(default_factory=list)
    source: str | None = None
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "kind": self.kind,
            "verdict": self.verdict,
            "actual": self.actual,
            "entities": [m.to_dict() for m in self.entities],
            "source": self.source,
            "reason": self.reason,
            "notes": self.notes,
            "figures": self.figures,
        }


@dataclass
class ArticleCheck:
    language: str
    claims: list[Claim]
    mentions: list[Mention]
    unlinked_names: list[str]
    foreign_places: list[str]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "source": self.source,
            "claims": [c.to_dict() for c in self.claims],
            "unlinked_names": self.unlinked_names,
            "foreign_places": self.foreign_places,
            "entities": [m.to_dict() for m in self.mentions],
            "counts": {v: sum(1 for c in self.claims if c.verdict == v) for v in ("supported", "contradicted", "not_checkable")},
        }


# --- vocabulary (English and Turkish) ----------------------------------------------
_WIN = re.compile(
    r"\b(?:won|wins|win|winning|has won|have won|took|takes|captured|captures|secured|secures|carried|swept|"
    r"declared victory|claimed victory|declares victory|defeated|defeats|beat|beats|beating|defeating|re-elected|reelected|was elected|elected|"
    r"trounced|routed|crushed|seized|wrested|flipped|snatched|(?:taking|took|takes|take|gained|gaining|won) control of|"
    r"kazandı|kazanmıştı|kazanıyor|kazanan|kazanmış|kazanarak|kazandığı|(?:yeniden )?seçildi|"
    r"zafer(?:ini)? ilan etti|galip geldi|birinci (?:parti )?(?:oldu|çıktı|olmuştu|çıkmıştı|geldi)|yendi|geçti)\b",
    re.I,
)
_LEAD = re.compile(r"\b(?:in the lead|leads|leading|is ahead|was ahead|ahead|önde|öne geçti|önde gidiyor|lider)\b", re.I)
_LOSE = re.compile(r"\b(?:lost|loses|lose|fell to|conceded|kaybetti|kaybetmişti|kaybediyor|yenildi|kaptırdı|kaptırmıştı)\b", re.I)
_HOLD = re.compile(r"\b(?:held on to|held onto|held|retained|kept|hung on to|korudu|elinde tuttu)\b", re.I)
_PREVIOUS = re.compile(
    r"\b(?:2019|five years ago|previous (?:local )?elections?|last (?:local )?elections?|in the last election|önceki (?:yerel )?seçim\w*|geçen (?:yerel )?seçim\w*|beş yıl önce)\b",
    re.I,
)
_DEFEAT_OBJ = re.compile(
    r"\b(?:defeated|defeats|beat|beats|beating|defeating|trounced|routed|crushed|ahead of|over|leads|leading|yendi|geçti|önünde|karşısında)\b", re.I
)
_MARGIN_AFTER = re.compile(
    r"^\s*(?:['’]?[a-zçğıöşü]*\s+)?(?P<unit>votes?|oy(?:la)?|points?|percentage points?|puan)\b(?:\s*(?:fark\w*|margin|lead|ahead))?", re.I
)
_MARGIN_BEFORE = re.compile(
    r"(?:\bby(?:\s+a\s+margin\s+of)?|\bmargin\s+of|\blead\s+of|\bfark(?:la|ıyla)?"
    r"|\b(?:lead|margin|advantage)\b[^.,;]{0,40}?\b(?:was|is|of|stood at|reached|at|grew to))\s+(?:[a-z]+\s+){0,3}$",
    re.I,
)
_TR_MARGIN_AFTER = re.compile(r"^\s*(?:['’]?[a-zçğıöşü]*\s+)?(?:fazla\s+|aşkın\s+)?(?P<unit>oy|puan)\s+fark", re.I)
_VOTES_AFTER = re.compile(r"^\s*(?:['’]?[a-zçğıöşü]*\s+)?(?:votes?|oy)\b(?!\s+fark)", re.I)
_SHARE_CTX = re.compile(r"\b(?:of the votes?|of votes|of the ballots|vote share|support|oy oranı|oyla|oy aldı|oyunu|oyların|oylarının|oy)\b", re.I)
_TURNOUT = re.compile(r"\b(?:turnout|participation|katılım(?: oranı)?|oy kullanma oranı|sandığa gitme oranı|sandığa gitti)\b", re.I)
_REGISTERED = re.compile(r"\b(?:eligible|registered|electorate|voters were registered|seçmen|kayıtlı|oy kullanma hakkı\w*|oy verme hakkı\w*)\b", re.I)
_VOTED = re.compile(r"\b(?:voted|cast (?:their )?ballots|cast (?:their )?votes|went to the polls|oy kulland\w*)\b", re.I)
_POPULATION = re.compile(r"\b(?:citizens|residents|inhabitants|population|people live|nüfus\w*|vatandaş\w*|kişinin yaşadığı|yaşayan)\b", re.I)
_BOXES = re.compile(r"\b(?:ballot boxes|boxes|sandık\w*)\b", re.I)
_OPENED = re.compile(r"\b(?:opened|counted|açıldı|açılan|sayıldı|sayılan)\b", re.I)
_ALL_BOXES = re.compile(r"\b(?:all (?:the )?(?:ballot )?boxes|every ballot box|tüm sandıklar|bütün sandıklar|sandıkların tamamı|sandıkların hepsi)\b", re.I)
_COUNT_UNIT_EN = re.compile(
    r"^\s*(?:of\s+(?:the\s+)?(?:[\wÇĞİÖŞÜçğıöşü]+['’]s\s+)?(?P<m>\d+)\s+)?(?P<unit>provinces|provincial capitals|cities|metropolitan (?:municipalities|cities|mayoralties|areas)|big cities|district (?:municipalities|mayoralties)|districts)\b",
    re.I,
)
_COUNT_UNIT_TR = re.compile(r"^\s*(?P<unit>il(?:de|i|in|den)?|büyükşehir\w*|ilçe\w*)\b", re.I)
_COUNT_TR_OF = re.compile(r"(?P<m>\d+)\s+(?P<unit>ilin|ilden|büyükşehirin|ilçenin)\s+$", re.I)
_STRONGHOLD = re.compile(r"\b(?:strongholds?|kales\w*)\b", re.I)
_VAGUE = re.compile(r"\b(?:many|several|numerous|some|a number of|a string of|birçok|pek çok|bazı|çok sayıda)\b", re.I)
# Turkish objects: accusative ("Kurum'u", "Bursa'yı") and dative ("CHP'ye") after an apostrophe.
_ACCUSATIVE = re.compile(r"['’](?:y?[ıiuü]|n[ıiuü]|y?[ae])\b")
_SPEECH_MIN_WORDS = 4  # shorter quotes are scare quotes ("lost altitude") inside the article's own sentence


def _unit_group(unit: str, facts: Facts) -> tuple[str, str]:
    """Scoreboard group and a label for a unit word."""
    u = fold(unit)
    if u.startswith(("metropolitan", "buyuksehir", "big cit")):
        return "metropolitan_mayor", "metropolitan municipalities"
    if u.startswith(("district", "ilce")):
        return "district_mayor", "district municipalities"
    return facts.top_group, "provinces"


class Checker:
    """Checks articles against one ``Facts``; build once, reuse for many articles."""

    def __init__(self, facts: Facts, linker: Linker | None = None) -> None:
        self.facts = facts
        self.linker = linker or Linker(facts)

    def check(self, text: str) -> ArticleCheck:
        lang = language(text)
        qs = quotes(text)
        linked = self.linker.link(text, lang, qs)
        claims: list[Claim] = []
        for sent in sentences(text):
            claims.extend(self._sentence(text, sent, qs, linked.mentions, linked.unlinked))
        foreign = []
        for m in linked.mentions:
            if m.ref.kind == "country" and m.ref.name not in foreign:
                foreign.append(m.ref.name)
        unlinked: list[str] = []
        for name, _s, _e in linked.unlinked:
            # "Urgen" after "Sinan Urgen" is the same unknown person.
            if name not in unlinked and not any(u.split()[-1] == name for u in unlinked if " " in u):
                unlinked.append(name)
        return ArticleCheck(lang, claims, linked.mentions, unlinked, foreign, self.facts.source)

    # --- one sentence ---------------------------------------------------------------
    def _sentence(self, text: str, sent: Span, qs: list[Span], mentions: list[Mention], unlinked: list[tuple[str, int, int]]) -> list[Claim]:
        inside = [Span(max(q.start, sent.start), min(q.end, sent.end)) for q in qs if q.start < sent.end and q.end > sent.start]
        speech = [q for q in inside if len(text[q.start : q.end].split()) >= _SPEECH_MIN_WORDS]
        masked = mask(text, speech)
        ms = [m for m in mentions if sent.start <= m.start < sent.end and not any(q.start <= m.start < q.end for q in speech)]
        ctx = _Ctx(
            self.facts,
            text,
            masked,
            sent,
            ms,
            numbers(masked, sent.start, sent.end),
            [u[0] for u in unlinked if sent.start <= u[1] < sent.end and not any(q.start <= u[1] < q.end for q in speech)],
        )
        out: list[Claim] = []
        out += ctx.counts()
        out += ctx.margins()
        out += ctx.votes_and_shares()
        out += ctx.turnout_and_registered()
        out += ctx.boxes()
        # A margin claim ("defeated X by 1 million votes") already checks who won.
        out += ctx.winners(covered=[(c.figures.get("actor"), c.figures.get("race_id")) for c in out if c.kind == "margin"])
        out += ctx.strongholds()
        out.sort(key=lambda c: c.start)
        for q in speech:
            qtext = text[q.start : q.end]
            reason = "quoted speech: a statement or opinion, not a result"
            if any(not n.percent and _POPULATION.search(qtext) for n in numbers(text, q.start, q.end)):
                reason += "; its figure is a population figure, which the election data does not hold"
            out.append(Claim(qtext, q.start, q.end, "quote", "not_checkable", entities=[m for m in mentions if q.start <= m.start < q.end], reason=reason))
        if not any(c.kind != "quote" for c in out):
            # The article's own words around the quotes: the longest stretch between them,
            # so that highlighted spans never overlap.
            best: tuple[int, int] | None = None
            pos = sent.start
            for q in [*sorted(speech, key=lambda q: q.start), Span(sent.end, sent.end)]:
                seg = text[pos : q.start]
                if seg.strip() and (best is None or len(seg.split()) > len(text[best[0] : best[1]].split())):
                    best = (pos, q.start)
                pos = max(pos, q.end)
            if best is not None and len(text[best[0] : best[1]].split()) >= 3:
                seg = text[best[0] : best[1]]
                s0 = best[0] + (len(seg) - len(seg.lstrip()))
                e0 = best[0] + len(seg.rstrip())
                out.append(Claim(text[s0:e0], s0, e0, "statement", "not_checkable", entities=[m for m in ms if s0 <= m.start < e0], reason=ctx.why_not()))
        out.sort(key=lambda c: c.start)
        return out


@dataclass
class _Ctx:
    facts: Facts
    text: str
    masked: str
    sent: Span
    mentions: list[Mention]
    nums: list[Number]
    unlinked: list[str] = field(default_factory=list)

    # --- helpers --------------------------------------------------------------------
    @property
    def s(self) -> str:
        return self.masked[self.sent.start : self.sent.end]

    def previous(self, pos: int | None = None) -> bool:
        """Is the claim at ``pos`` about the previous election?

        Yes if a marker ("in 2019", "2019'da", "five years ago") sits in the same
        clause, or opens the sentence ("In 2019, the AKP won ..."). A marker in
        another clause ("The AKP lost Balıkesir, which it had won in 2019") does
        not make the first clause's claim a 2019 claim.
        """
        if pos is None:
            return bool(_PREVIOUS.search(self.s))
        lo, hi = self.clause_start(pos), self.clause_end(pos)
        for m in _PREVIOUS.finditer(self.masked, self.sent.start, self.sent.end):
            ms = m.start()
            if lo <= ms < hi:
                return True
            first_clause_end = self.clause_end(self.sent.start)
            if ms < first_clause_end <= lo and not any(x.ref.kind in ACTORS and x.start < first_clause_end for x in self.mentions):
                return True
        return False

    def actor_before(self, pos: int, kinds: tuple[str, ...] = ACTORS) -> Mention | None:
        """The nearest actor before ``pos`` that is not a Turkish object ("Kurum'u", "Bursa'yı")."""
        # An appositive right before the verb ("The New Welfare Party, an Islamist rival of
        # the AKP, won ...") is skipped: the subject is before it.
        if re.search(r",\s*$", self.masked[self.sent.start : pos]):
            open_at = self.masked.rfind(",", self.sent.start, len(self.masked[:pos].rstrip()) - 1)
            if open_at > self.sent.start and any(m.end <= open_at and m.ref.kind in kinds for m in self.mentions):
                pos = open_at
        cands = [m for m in self.mentions if m.end <= pos and m.ref.kind in kinds]
        for m in reversed(cands):
            if not _ACCUSATIVE.match(self.text[m.end : m.end + 5]):
                return m
        return cands[-1] if cands else None

    def figure_actor(self, n: Number) -> Mention | None:
        """Whose figure a number is: an actor named right after it ("39.6% for Murat Kurum"),
        else the nearest one in its clause, else the sentence's subject (", securing 2 million votes")."""
        m = re.match(r"\s*(?:of the vote\s+|support\s+)?for\s+(?:his\s+|her\s+|the\s+)?", self.masked[n.end : self.sent.end], re.I)
        if m:
            a = self.actor_after(n.end + m.end(), self.clause_end(n.end))
            if a is not None and a.start - (n.end + m.end()) < 25:
                return a
        cs = self.clause_start(n.start)
        a = self.actor_before(n.start)
        if a is not None and a.start >= cs:
            return a
        first = next((x for x in self.mentions if x.ref.kind in ACTORS and x.start < n.start and not _ACCUSATIVE.match(self.text[x.end : x.end + 5])), None)
        return first or a

    def actor_after(self, pos: int, end: int | None = None, kinds: tuple[str, ...] = ("candidate", "party")) -> Mention | None:
        for m in self.mentions:
            if m.start >= pos and (end is None or m.start < end) and m.ref.kind in kinds:
                return m
        return None

    def areas(self, lo: int | None = None, hi: int | None = None) -> list[Mention]:
        lo = self.sent.start if lo is None else lo
        hi = self.sent.end if hi is None else hi
        out = []
        for m in self.mentions:
            # The country itself ("Turkey's 81 provinces") is not a race's place.
            if m.ref.kind == "area" and lo <= m.start < hi and m.ref.id != self.facts.election.root_id:
                out.append(m)
        return out

    def clause_end(self, pos: int) -> int:
        m = re.search(r"[,;:—–]|\s-\s", self.masked[pos : self.sent.end])
        return pos + m.start() if m else self.sent.end

    def claim(
        self,
        start: int,
        end: int,
        kind: str,
        verdict: str,
        actual: str | None,
        ents: list[Mention],
        *,
        race_id: str | None = None,
        previous: bool = False,
        reason: str | None = None,
        notes: list[str] | None = None,
        **figures: Any,
    ) -> Claim:
        start = max(start, self.sent.start)
        end = min(end, self.sent.end)
        # Trim to whole words and drop trailing punctuation: the text is shown as the claim.
        while start < end and self.text[start] in " ,;:":
            start += 1
        while end > start and self.text[end - 1] in " ,;:":
            end -= 1
        src = self.facts.source
        if previous and self.facts.previous is not None:
            src = f"{self.facts.previous.id}: official final results"
        if race_id:
            src += f", race {race_id}"
        if race_id:
            figures["race_id"] = race_id
        notes = list(notes or [])
        if previous and self.facts.previous is not None and race_id:
            note = self.facts.lexicon.race_notes.get(self.facts.previous.id, {}).get(race_id)
            if note:
                notes.append(note)
        return Claim(
            self.text[start:end], start, end, kind, verdict, actual, ents, src if verdict != "not_checkable" or actual else None, reason, notes, figures
        )  # type: ignore[arg-type]

    def why_not(self) -> str:
        people = [m for m in self.mentions if m.ref.kind == "person"]
        s = self.s
        if any(not n.percent and _POPULATION.search(s) for n in self.nums):
            return "population figure: the election data holds registered voters, not population"
        if people:
            p = people[0].ref
            return f"about {p.name} ({p.detail.get('role', 'not a candidate')}): not a result the election data holds"
        if self.unlinked:
            return f"about {self.unlinked[0]}, who is not a candidate in this election: a statement or opinion, not a result"
        return "no figure or result the election data holds (opinion, background or event)"

    def fmt_result(self, res: RaceResult, *, n: int = 2) -> str:
        parts = []
        for c in res.candidates[:n]:
            who = f"{c.name} ({c.party})" if c.name and c.name != c.party else (c.party or "independents")
            parts.append(f"{who} {c.votes:,} ({100 * c.share:.1f}%)")
        state = ""
        if self.facts.mode == "live" and res.status != "complete":
            state = f" with {res.boxes_opened:,} of {res.boxes_total:,} ballot boxes opened"
        return f"{res.race_name}{state}: " + ", ".join(parts)

    def race_of(self, actor: Mention | None, area: Mention | None, *, previous: bool = False) -> str | None:
        """The race a claim is about: the area's main race, else the actor candidate's own race."""
        if area is not None:
            r = self.facts.main_race(area.ref.id, previous=previous)
            if r is not None:
                return r.id
        if actor is not None and actor.ref.kind == "candidate":
            rid = actor.ref.detail["race_id"]
            if previous:
                return rid if self.facts.previous is not None and rid in self.facts.previous.races else None
            return rid
        return None

    def cand_in(self, res: RaceResult, actor: Mention) -> tuple[Any, str] | None:
        """The CandidateResult the actor stands for in a race, and a label; None if not standing there."""
        if actor.ref.kind == "candidate":
            if actor.ref.detail["race_id"] != res.race_id:
                return None
            cid = actor.ref.id.rsplit(":", 1)[1]
            for c in res.candidates:
                if c.id == cid:
                    return c, f"{c.name} ({c.party})"
            return None
        if actor.ref.kind == "party":
            for c in res.candidates:
                if c.party == actor.ref.id:
                    return c, (f"{c.name} ({c.party})" if c.name and c.name != c.party else c.party)
        return None

    def not_candidate(self, start: int, end: int, kind: str, actor: Mention) -> Claim:
        role = actor.ref.detail.get("role", "not a candidate in this election")
        return self.claim(start, end, kind, "not_checkable", None, [actor], reason=f"{actor.ref.name} is not a candidate: {role}")

    # --- counts of races won ----------------------------------------------------------
    def counts(self) -> list[Claim]:
        out = []
        s = self.s
        consumed: set[int] = set()  # the "81" of "36 of Turkey's 81 provinces" is a total, not a count
        for n in self.nums:
            if re.match(r"\s+(?:ilin|ilden|büyükşehirin|ilçenin)\s+\d", self.masked[n.end : n.end + 20], re.I):
                consumed.add(n.start)
        for n in self.nums:
            if n.percent or n.start in consumed:
                continue
            after = self.masked[n.end : self.sent.end]
            m = _COUNT_UNIT_EN.match(after)
            of_total = None
            unit = None
            end = n.end
            if m:
                unit = m.group("unit")
                of_total = int(m.group("m")) if m.group("m") else None
                end = n.end + m.end()
                if m.group("m"):
                    consumed.add(n.end + m.start("m"))
            else:
                before = self.masked[max(self.sent.start, n.start - 30) : n.start]
                mt = _COUNT_TR_OF.search(before)
                mu = _COUNT_UNIT_TR.match(after)
                if mt:
                    unit, of_total = mt.group("unit"), int(mt.group("m"))
                    consumed.add(max(self.sent.start, n.start - 30) + mt.start("m"))
                elif mu and re.search(r"kazan|birinci|önde|aldı", s, re.I):
                    unit = mu.group("unit")
                    end = n.end + mu.end()
            if unit is None:
                continue
            if not (_WIN.search(s) or _LEAD.search(s)):
                continue
            actor = self.actor_before(n.start, ("party",)) or self.actor_after(n.end, kinds=("party",))
            if actor is None:
                continue
            prev = self.previous(n.start)
            group, label = _unit_group(unit, self.facts)
            # Turkish puts the verb last: "81 ilin 35'inde kazandı" is checked up to the verb.
            vt = re.match(r"[^,;.]{0,40}?\b(?:kazandı|kazanmıştı|birinci (?:parti )?(?:oldu|olmuştu)|önde)\b", self.masked[end : self.sent.end])
            if vt:
                end += vt.end()
            boards = self.facts.previous_scoreboards if prev else self.facts.scoreboards
            board = boards.get(group)
            start = min(actor.start, n.start)
            if of_total is not None:
                before_of = _COUNT_TR_OF.search(self.masked[max(self.sent.start, n.start - 30) : n.start])
                if before_of:
                    start = min(start, n.start - 30 + before_of.start() if n.start - 30 >= self.sent.start else self.sent.start + before_of.start())
            if board is None:
                out.append(self.claim(start, end, "count_won", "not_checkable", None, [actor], reason=f"no scoreboard of {label}", previous=prev))
                continue
            line = next((ln for ln in board.lines if ln.party == actor.ref.id), None)
            won = line.won if line else 0
            leading = line.leading if line else 0
            ok = compare(n, won)
            # While counting, a figure that only holds with the races still led (not won)
            # is not a verdict yet.
            open_races = board.races - sum(ln.won for ln in board.lines) if not prev else 0
            # While counting, a figure between what is won and what could still be won is
            # not a verdict yet.
            pending = not ok and open_races > 0 and won <= n.value <= won + open_races
            notes = []
            if of_total is not None and of_total != board.races:
                ok = False
                notes.append(f"there are {board.races} {label}, not {of_total}")
            when = f"in {self.facts.previous.info.date.year}" if prev and self.facts.previous else ""
            actual = f"{self.facts.party_name(actor.ref.id)} won {won} of {board.races} {label}{(' ' + when) if when else ''}" + (
                f" and leads in {leading} more" if leading else ""
            )
            verdict = "supported" if ok else ("not_checkable" if pending and not notes else "contradicted")
            reason = f"still counting: {won} won, {leading} led, {open_races} not decided" if verdict == "not_checkable" else None
            out.append(
                self.claim(
                    start,
                    end,
                    "count_won",
                    verdict,
                    actual,
                    [actor],
                    previous=prev,
                    notes=notes,
                    reason=reason,
                    party=actor.ref.id,
                    won=won,
                    leading=leading,
                    of=board.races,
                    claimed=n.value,
                    group=group,
                )
            )
        return out

    # --- margins --------------------------------------------------------------------
    def margins(self) -> list[Claim]:
        out = []
        for n in self.nums:
            after = self.masked[n.end : self.sent.end]
            before = self.masked[max(self.sent.start, n.start - 40) : n.start]
            m = _MARGIN_AFTER.match(after)
            mtr = _TR_MARGIN_AFTER.match(after)
            if not ((m and _MARGIN_BEFORE.search(before)) or mtr or re.search(r"^-?\s*(?:vote|point)s?\s+(?:lead|margin)", after, re.I)):
                continue
            unit_m = mtr or m
            unit = fold(unit_m.group("unit")) if unit_m else ("points" if "point" in after[:8] else "votes")
            points = unit.startswith(("point", "percentage", "puan")) or n.percent
            verb = None
            for vm in _DEFEAT_OBJ.finditer(self.masked, self.sent.start, n.start):
                verb = vm
            for vm in _WIN.finditer(self.masked, self.sent.start, n.start):
                if verb is None or vm.start() > verb.start():
                    verb = vm
            pivot = verb.start() if verb else n.start
            actor = self.actor_before(pivot)
            opp = self.actor_after(verb.end(), n.start) if verb else None
            end = n.end + (unit_m.end() if unit_m else 0)
            if verb is None or mtr is not None:
                # Turkish word order (subject, object-ACC, figure, verb): the subject is the
                # first actor without an accusative suffix, the object the one with it.
                before = [x for x in self.mentions if x.start < n.start and x.ref.kind in ACTORS]
                acc = [x for x in before if re.match(r"['’](?:y?[ıiuü]|n[ıiuü])\b", self.text[x.end : x.end + 4])]
                nom = [x for x in before if x not in acc]
                if nom:
                    actor, opp = nom[0], (acc[0] if acc else None)
                vm2 = re.match(r"\w*(?:\s+(?:geçti|yendi|kazandı|önde|önünde))?", self.masked[end : self.sent.end])
                if vm2:
                    end += vm2.end()
            if actor is None:
                continue
            start = actor.start
            ents = [x for x in (actor, opp) if x is not None]
            if actor.ref.kind == "person":
                out.append(self.not_candidate(start, end, "margin", actor))
                continue
            prev = self.previous(n.start)
            areas = self.areas()
            rid = self.race_of(actor, areas[0] if areas and actor.ref.kind == "party" else None, previous=prev)
            if rid is None:
                out.append(self.claim(start, end, "margin", "not_checkable", None, ents, reason="no race to check the margin against (no place named)"))
                continue
            res = self.facts.result(rid, previous=prev)
            me = self.cand_in(res, actor)
            if me is None:
                out.append(
                    self.claim(start, end, "margin", "contradicted", f"{actor.ref.name} did not stand in {res.race_name}", ents, race_id=rid, previous=prev)
                )
                continue
            c_me, label = me
            other = self.cand_in(res, opp) if opp is not None else None
            if other is None:
                other_c = next((c for c in res.candidates if c.id != c_me.id), None)
                other_label = (
                    f"{other_c.name} ({other_c.party})" if other_c and other_c.name and other_c.name != other_c.party else (other_c.party if other_c else "-")
                )
            else:
                other_c, other_label = other
            if other_c is None:
                continue
            diff_votes = c_me.votes - other_c.votes
            diff_points = 100.0 * (c_me.share - other_c.share)
            val = diff_points if points else diff_votes
            ok = val > 0 and compare(n, val)
            what = f"{diff_points:.1f} points" if points else f"{diff_votes:,} votes"
            actual = (
                f"{label} {'leads' if self.facts.counting(rid) else 'won'} by {what} over {other_label} ({c_me.votes:,} to {other_c.votes:,})"
                if val > 0
                else f"{label} trails {other_label} by {abs(diff_votes):,} votes"
            )
            if self.facts.counting(rid):
                actual += f", with {res.boxes_opened:,} of {res.boxes_total:,} ballot boxes opened"
            out.append(
                self.claim(
                    start,
                    end,
                    "margin",
                    "supported" if ok else "contradicted",
                    actual,
                    ents,
                    race_id=rid,
                    previous=prev,
                    actor=actor.ref.id,
                    margin_votes=diff_votes,
                    margin_points=round(diff_points, 2),
                    claimed=n.value,
                    qualifier=n.qualifier,
                )
            )
        return out

    # --- votes and shares -----------------------------------------------------------------
    def votes_and_shares(self) -> list[Claim]:
        out = []
        for n in self.nums:
            after = self.masked[n.end : min(self.sent.end, n.end + 40)]
            before = self.masked[max(self.sent.start, n.start - 40) : n.start]
            if _MARGIN_BEFORE.search(before) or _TR_MARGIN_AFTER.match(after) or re.match(r"^-?\s*(?:vote|point)s?\s+(?:lead|margin)", after, re.I):
                continue
            if _BOXES.search(after[:25]) or _TURNOUT.search(before + after[:20]) or _REGISTERED.search(after[:30]):
                continue
            if n.percent and re.match(r"\s*(?:of (?:the )?(?:ballot )?boxes|of (?:the )?provinces)", after, re.I):
                continue
            if n.percent:
                # "with 39.6%" (not "with 62% of ballot boxes"), "yüzde 49 ile", "won 51% in Istanbul"
                with_pct = (
                    re.search(r"\bwith\s+(?:about\s+|around\s+|nearly\s+|almost\s+|more than\s+|over\s+|just\s+)?$", before, re.I)
                    and not re.match(r"\s*of\s+(?!the votes?\b|votes\b|the ballots\b)", after, re.I)
                ) or (re.match(r"\s*(?:ile|oyla)\b", after) and _WIN.search(self.s))
                verb_pct = re.search(
                    r"\b(?:won|wins|got|gets|received|receives|took|takes|secured|garnered|polled|collected)\s+(?:about\s+|around\s+|nearly\s+|almost\s+|more than\s+|over\s+|just\s+|only\s+)?$",
                    before,
                    re.I,
                )
                if not (_SHARE_CTX.search(after[:30] + " " + before[-25:]) or with_pct or verb_pct or re.match(r"\s*(?:against|to)\s+[\d%]", after)):
                    continue
                kind = "share"
            else:
                if not _VOTES_AFTER.match(after) or n.value < 100:
                    continue
                kind = "votes"
            actor = self.figure_actor(n)
            if actor is None:
                continue
            ents = [actor]
            lo = min(actor.start, n.start)
            if actor.ref.kind == "person":
                out.append(self.not_candidate(lo, max(n.end, actor.end), kind, actor))
                continue
            prev = self.previous(n.start)
            areas = self.areas()
            rid = self.race_of(actor, areas[0] if areas and (actor.ref.kind != "candidate" or prev) else None, previous=prev)
            end = n.end + (_VOTES_AFTER.match(after).end() if kind == "votes" and _VOTES_AFTER.match(after) else 0)
            end = max(end, actor.end)
            if rid is None:
                out.append(self.claim(lo, end, kind, "not_checkable", None, ents, reason="no race named for this figure"))
                continue
            res = self.facts.result(rid, previous=prev)
            me = self.cand_in(res, actor)
            if me is None:
                out.append(self.claim(lo, end, kind, "contradicted", f"{actor.ref.name} did not stand in {res.race_name}", ents, race_id=rid, previous=prev))
                continue
            c, label = me
            if kind == "share":
                ok = compare(n, 100.0 * c.share)
                actual = f"{label}: {100 * c.share:.2f}% of valid votes ({c.votes:,} of {res.valid:,})"
            else:
                ok = compare(n, c.votes)
                actual = f"{label}: {c.votes:,} votes"
            if self.facts.counting(rid):
                actual += f" so far, with {res.boxes_opened:,} of {res.boxes_total:,} ballot boxes opened"
            out.append(
                self.claim(
                    lo,
                    end,
                    kind,
                    "supported" if ok else "contradicted",
                    actual,
                    ents,
                    race_id=rid,
                    previous=prev,
                    actor=actor.ref.id,
                    votes=c.votes,
                    share=round(c.share, 6),
                    claimed=n.value,
                )
            )
        return out

    # --- turnout, registered voters, votes cast -----------------------------------------
    def turnout_and_registered(self) -> list[Claim]:
        out = []
        areas = self.areas()
        area = areas[0] if areas else None
        for n in self.nums:
            prev = self.previous(n.start)
            near = self.masked[max(self.sent.start, n.start - 60) : min(self.sent.end, n.end + 60)]
            if n.percent and _TURNOUT.search(near) and not _BOXES.search(self.masked[n.end : n.end + 25]):
                out.append(self._turnout(n, area, prev))
            elif (
                not n.percent
                and n.value >= 1000
                and (
                    _REGISTERED.search(self.masked[n.end : min(self.sent.end, n.end + 80)])
                    or _REGISTERED.search(self.masked[max(self.sent.start, n.start - 30) : n.start])
                )
            ):
                if _POPULATION.search(near) and not re.search(r"eligible|registered|seçmen|kayıtlı", near, re.I):
                    continue
                out.append(self._registered(n, area, prev, "registered"))
            elif (
                not n.percent
                and n.value >= 1000
                and _VOTED.search(self.masked[n.end : min(self.sent.end, n.end + 60)])
                and not _VOTES_AFTER.match(self.masked[n.end : self.sent.end])
            ):
                out.append(self._registered(n, area, prev, "voters"))
        return out

    def _electorate(self, area: Mention | None, prev: bool, what: str = "registered") -> tuple[int, int, str, str | None] | None:
        """(registered, voters, label, race id) for the whole country or an area."""
        f = self.facts
        if prev:
            if f.previous is None:
                return None
            if area is None:
                return None
            r = f.main_race(area.ref.id, previous=True)
            if r is None:
                return None
            res = f.result(r.id, previous=True)
            return res.registered_total, res.total_voters, res.race_name, r.id
        if area is None:
            if f.electorate is None:
                return None
            if f.mode == "live" and what == "voters":
                return None  # the electorate's voters are known only from the final results
            return f.electorate.registered, f.electorate.voters, f"the whole electorate of {f.election.info.name}", None
        if f.mode == "final" and area.ref.id in f.electorate_by_area:
            t = f.electorate_by_area[area.ref.id]
            return t.registered, t.voters, f"the whole electorate of {area.ref.name}", None
        r = f.main_race(area.ref.id)
        if r is None:
            return None
        res = f.result(r.id)
        return res.registered_total, res.total_voters, res.race_name, r.id

    def _registered(self, n: Number, area: Mention | None, prev: bool, what: str) -> Claim:
        e = self._electorate(area, prev, what)
        lo = min([n.start] + ([area.start] if area and area.start > self.sent.start else []))
        hi = self.clause_end(n.end) if what == "registered" else n.end + 40
        hi = min(hi, self.sent.end)
        m = _REGISTERED.search(self.masked, n.end, self.sent.end) if what == "registered" else _VOTED.search(self.masked, n.end, self.sent.end)
        if m:
            hi = max(min(hi, self.sent.end), m.end())
        ents = [area] if area else []
        if e is None:
            return self.claim(lo, hi, what, "not_checkable", None, ents, reason="the election data holds no electorate figure for this")
        reg, voters, label, rid = e
        val = reg if what == "registered" else voters
        ok = compare(n, val)
        actual = f"{val:,} {'registered voters' if what == 'registered' else 'voters'} ({label})"
        notes = []
        if area is None and what == "registered" and not prev:
            notes.append(
                f"mayor races only cover {self.facts.election.total_registered:,} registered voters (village voters of non-metropolitan provinces elect no mayor); the electorate counts the provincial-council races too"
            )
        src_note = None if rid else (self.facts.electorate.source if self.facts.electorate else None)
        c = self.claim(lo, hi, what, "supported" if ok else "contradicted", actual, ents, race_id=rid, previous=prev, notes=notes, value=val, claimed=n.value)
        if src_note:
            c.source = f"{self.facts.election.id}: {src_note}"
        return c

    def _turnout(self, n: Number, area: Mention | None, prev: bool) -> Claim:
        e = self._electorate(area, prev, "voters")
        lo = min(n.start, area.start if area else n.start)
        tm = _TURNOUT.search(self.masked, self.sent.start, self.sent.end)
        if tm:
            lo = min(lo, tm.start())
        hi = n.end
        ents = [area] if area else []
        if e is None or not e[0]:
            why = "the national turnout is known only from the final results" if self.facts.mode == "live" and area is None and not prev else "no turnout figure for this in the election data"
            return self.claim(lo, hi, "turnout", "not_checkable", None, ents, reason=why)
        reg, voters, label, rid = e
        if self.facts.mode == "live" and rid:
            res = self.facts.result(rid)
            t = res.turnout or 0.0
        else:
            t = voters / reg
        ok = compare(n, 100.0 * t)
        actual = f"turnout {100 * t:.1f}% ({voters:,} of {reg:,}; {label})"
        return self.claim(
            lo, hi, "turnout", "supported" if ok else "contradicted", actual, ents, race_id=rid, previous=prev, turnout=round(t, 6), claimed=n.value
        )

    # --- ballot boxes opened ---------------------------------------------------------
    def boxes(self) -> list[Claim]:
        out = []
        s = self.s
        if not (_BOXES.search(s) and _OPENED.search(s)):
            return out
        areas = self.areas()
        area = areas[0] if areas else None
        rid = self.race_of(None, area) if area else None
        cands = [n for n in self.nums if n.percent and _BOXES.search(self.masked[n.end : n.end + 40])]
        if not cands and _ALL_BOXES.search(s):
            m = _ALL_BOXES.search(s)
            cands = [Number(100.0, 1.0, True, "", self.sent.start + m.start(), self.sent.start + m.end(), m.group(0))]
        for n in cands:
            om = _OPENED.search(self.masked, n.end, self.sent.end)
            hi = om.end() if om else n.end
            if area is not None and area.end > hi and area.start - hi < 20:
                hi = area.end
            lo = n.start
            qm = re.search(
                r"(?:more than|over|nearly|almost|about|around|at least|less than)\s+$", self.masked[max(self.sent.start, n.start - 20) : n.start], re.I
            )
            if qm:
                lo = n.start - (len(self.masked[max(self.sent.start, n.start - 20) : n.start]) - qm.start())
            ents = [area] if area else []
            if rid is None:
                out.append(self.claim(lo, hi, "boxes_opened", "not_checkable", None, ents, reason="no place named for the ballot boxes"))
                continue
            opened, total = self.facts.boxes(rid)
            share = 100.0 * opened / total if total else 0.0
            live_counting = self.facts.mode == "live" and self.facts.counting(rid)
            if live_counting or n.value >= 100.0:
                ok = compare(n, share)
                out.append(
                    self.claim(
                        lo,
                        hi,
                        "boxes_opened",
                        "supported" if ok else "contradicted",
                        f"{opened:,} of {total:,} ballot boxes opened ({share:.1f}%)",
                        ents,
                        race_id=rid,
                        opened=opened,
                        total=total,
                        claimed=n.value,
                    )
                )
            else:
                # A share below 100% describes a moment of the night. The final results
                # have every box opened and keep no timeline, so they cannot say what the
                # share was when the article was written (a live state can).
                out.append(
                    self.claim(
                        lo,
                        hi,
                        "boxes_opened",
                        "not_checkable",
                        f"all {total:,} ballot boxes were opened in the final count",
                        ents,
                        race_id=rid,
                        reason="describes a moment of election night; the final results have every box opened and no timeline (check it against a live state)",
                        opened=opened,
                        total=total,
                        claimed=n.value,
                    )
                )
        return out

    # --- who won, leads, lost or held where -------------------------------------------------
    def winners(self, covered: list[tuple[Any, Any]]) -> list[Claim]:
        out = []
        done: set[tuple[str, str, bool]] = set()
        for rx, kind in ((_WIN, "won"), (_LEAD, "leads"), (_LOSE, "lost"), (_HOLD, "held")):
            for vm in rx.finditer(self.masked, self.sent.start, self.sent.end):
                vs, ve = vm.start(), vm.end()
                prev = self.previous(vs)
                # "won 49% of the vote", "won 35 provinces": a figure, checked by its own rule.
                if kind in ("won", "lost") and re.match(
                    r"\s+(?:a total of\s+|about\s+|around\s+|nearly\s+|almost\s+|more than\s+|over\s+|just\s+|only\s+)?(?:\d|%|yüzde)",
                    self.masked[ve : ve + 30],
                    re.I,
                ):
                    continue
                passive = re.match(r"\s+by\b", self.masked[ve : ve + 4])
                actor = self.actor_after(ve, self.clause_end(ve)) if passive else self.actor_before(vs)
                # A pronoun subject ("he had defeated") falls back to the nearest actor before it.
                if actor is None:
                    continue
                # Places: in the verb's clause ("won ... in Istanbul and Ankara"), else before it
                # ("In the capital Ankara, ... declared victory").
                ce = self.clause_end(ve)
                areas = self.areas(ve, ce) or self.areas(self.sent.start, vs)
                if not areas:
                    if actor.ref.kind == "candidate" and not passive:
                        areas_ids: list[Mention | None] = [None]
                    else:
                        continue
                else:
                    areas_ids = list(areas)
                for area in areas_ids:
                    key = (actor.ref.id, area.ref.id if area else "", prev)
                    if key in done:
                        continue
                    done.add(key)
                    rid = self.race_of(actor, area, previous=prev)
                    if (actor.ref.id, rid) in covered or (actor.ref.id, self.race_of(actor, area)) in covered:
                        continue
                    lo = min(actor.start, vs, area.start if area else vs)
                    hi = max(ve, actor.end, area.end if area else ve)
                    # Extend to a trailing "mayoral race" and to a leading "in 2019".
                    tail = re.match(
                        r"(?:['’]s)?\s+(?:metropolitan\s+)?(?:mayoral race|mayoral election|mayoralty|race|büyükşehir belediye(?: başkanlığı)?|belediye başkanlığı\w*)",
                        self.masked[hi : hi + 40],
                        re.I,
                    )
                    if tail:
                        hi += tail.end()
                    if prev:
                        pm = _PREVIOUS.search(self.masked, self.sent.start, lo)
                        if pm:
                            lo = self.clause_start(pm.start()) if self.clause_start(pm.start()) < pm.start() else pm.start()
                    ents = [x for x in (actor, area) if x is not None]
                    if actor.ref.kind == "person":
                        out.append(self.not_candidate(lo, hi, f"{kind}", actor))
                        continue
                    if rid is None:
                        out.append(self.claim(lo, hi, kind, "not_checkable", None, ents, reason="no race for this place in the election data"))
                        continue
                    out.append(self._winner_verdict(lo, hi, kind, actor, area, rid, prev, ents))
        return out

    def _winner_verdict(self, lo: int, hi: int, kind: str, actor: Mention, area: Mention | None, rid: str, prev: bool, ents: list[Mention]) -> Claim:
        f = self.facts
        res = f.result(rid, previous=prev)
        leader = next((c for c in res.candidates if c.id == res.leader), None)
        notes: list[str] = []
        if leader is None:
            return self.claim(
                lo, hi, kind, "not_checkable", f"{res.race_name}: no votes counted yet", ents, race_id=rid, previous=prev, reason="no votes counted yet"
            )
        is_leader: bool
        if actor.ref.kind == "party":
            is_leader = leader.party == actor.ref.id
        elif prev:
            # The previous election's file names parties, not always candidates: use the
            # lexicon's candidate list where it has one, else the candidate's party.
            names = f.lexicon.previous_candidates.get(f.previous.id if f.previous else "", {}).get(rid)
            if names:
                who = names.get(leader.party or "")
                is_leader = who is not None and fold(who) == fold(actor.ref.name)
                if who:
                    notes.append(f"{who} was the {leader.party} candidate")
            else:
                is_leader = leader.party == actor.ref.detail.get("party")
                notes.append(
                    f"the {f.previous.id if f.previous else 'previous'} data names parties, not candidates: checked as {actor.ref.name}'s party ({actor.ref.detail.get('party')})"
                )
        else:
            is_leader = actor.ref.detail.get("race_id") == rid and leader.id == actor.ref.id.rsplit(":", 1)[1]
        second = next((c for c in res.candidates if c.id == res.runner_up), None)
        lead_txt = f"{_label(leader)} {'leads' if f.counting(rid) and not prev else 'won'} with {leader.votes:,} votes ({100 * leader.share:.1f}%)"
        if second is not None:
            lead_txt += f", ahead of {_label(second)} with {second.votes:,} ({100 * second.share:.1f}%)"
        if f.counting(rid) and not prev:
            lead_txt += f"; {res.boxes_opened:,} of {res.boxes_total:,} ballot boxes opened"
        actual = f"{res.race_name}: {lead_txt}"
        if kind == "held" and prev is False and f.previous is not None:
            then = f.previous_results.get(rid)
            if then is None:
                return self.claim(lo, hi, kind, "not_checkable", actual, ents, race_id=rid, reason="the race is not in the previous election")
            held = then.leader_party == (actor.ref.id if actor.ref.kind == "party" else actor.ref.detail.get("party")) and is_leader
            return self.claim(
                lo,
                hi,
                kind,
                "supported" if held else "contradicted",
                actual + f" ({f.previous.info.date.year}: {then.leader_party} won)",
                ents,
                race_id=rid,
                winner=leader.party,
            )
        if kind == "lost":
            ok = not is_leader
            if ok and f.counting(rid) and not prev:
                return self.claim(lo, hi, kind, "not_checkable", actual, ents, race_id=rid, reason="still counting", winner=leader.party)
            return self.claim(lo, hi, kind, "supported" if ok else "contradicted", actual, ents, race_id=rid, previous=prev, notes=notes, winner=leader.party)
        if kind == "won" and is_leader and f.counting(rid) and not prev:
            return self.claim(lo, hi, kind, "not_checkable", actual, ents, race_id=rid, reason="still counting: leads, not won yet", winner=leader.party)
        return self.claim(
            lo, hi, kind, "supported" if is_leader else "contradicted", actual, ents, race_id=rid, previous=prev, notes=notes, winner=leader.party
        )

    # --- strongholds ------------------------------------------------------------------
    def strongholds(self) -> list[Claim]:
        out = []
        m = _STRONGHOLD.search(self.s)
        if not m or self.facts.previous is None:
            return out
        pos = self.sent.start + m.start()
        owner = self.actor_before(pos, ("party",))
        if owner is None:
            return out
        vague = _VAGUE.search(self.masked, max(self.sent.start, owner.start - 30), pos)
        if not vague:
            return out
        taker = self.actor_before(owner.start, ("party",))
        comps = [c for c in self.facts.comparisons if c.stronghold_of == owner.ref.id]
        top = set(self.facts.election.info.top_offices)
        lost_to = lambda cs: [c for c in cs if c.leader_now and c.leader_now != owner.ref.id and (taker is None or c.leader_now == taker.ref.id)]  # noqa: E731
        all_l = lost_to(comps)
        top_l = lost_to([c for c in comps if c.office in top])
        who = self.facts.party_name(taker.ref.id) if taker else "other parties"
        actual = (
            f"of the {len(comps)} mayoral races that were {self.facts.party_name(owner.ref.id)} strongholds in {self.facts.previous.info.date.year} "
            f"(won by {STRONGHOLD_MARGIN_POINTS:.0f}+ points), {who} {'leads' if self.facts.mode == 'live' else 'won'} {len(all_l)} ({len(top_l)} of them provincial or metropolitan: "
            + (", ".join(c.race_name for c in top_l) or "none")
            + ")"
        )
        lo = taker.start if taker and taker.start >= self.sent.start else vague.start()
        lo = max(lo, self.clause_start(vague.start()))
        out.append(
            self.claim(
                lo,
                pos + len(m.group(0)),
                "strongholds",
                "not_checkable",
                actual,
                [x for x in (taker, owner) if x],
                reason=f"vague quantity ('{vague.group(0)}'): the figures are given, no verdict",
                lost=len(all_l),
                lost_top=len(top_l),
                strongholds=len(comps),
            )
        )
        return out

    def clause_start(self, pos: int) -> int:
        """Start of the clause holding ``pos``: after the last , ; : or "and" before it."""
        ends = [m.end() for m in re.finditer(r"[,;:]|\band\b", self.masked[self.sent.start : pos])]
        return self.sent.start + ends[-1] if ends else self.sent.start


def _label(c: Any) -> str:
    return f"{c.name} ({c.party})" if c.name and c.name != c.party else (c.party or "independents")


def check_article(text: str, facts: Facts, checker: Checker | None = None) -> ArticleCheck:
    """Check one article (English or Turkish) against the facts."""
    return (checker or Checker(facts)).check(text)
