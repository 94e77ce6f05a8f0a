"""Find the names in an article and link them to the election's candidates, parties and places.

Three passes over the text, all keeping character offsets:

1. phrases: multi-word aliases (party names in English, "main opposition
   party", news agencies), matched on an offset-preserving folded copy;
2. capitalised word sequences, linked greedily longest-window-first, so
   "CHP Mayor Mansour Yabas" gives the party CHP, a title, and Mansur Yavaş;
3. lower-case tokens that look like a garbled candidate name ("immamol"):
   only in English text or as a lone quoted word, because in Turkish text a
   lower-case "kurum" is the noun "institution", not Murat Kurum.

Ambiguity is settled by context: a surname seen earlier as a full name, a
place in the same article, and the top races before district races. Every
link carries its method and a confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sandik.core.names import NameIndex, NameMatch, fold
from sandik.news.facts import Facts, load_countries
from sandik.news.text import Span, fold_chars

# Capitalised words that are not names (titles, days, months, sentence openers, demonyms).
_NOT_NAMES = set(
    fold(w)
    for w in """
    The A An In On At Of For And But Or If As By To From With After Before Since While When Where Who What This That These Those
    It Its He She They We You I His Her Their Our Your Tonight Today Yesterday Sunday Monday Tuesday Wednesday Thursday Friday Saturday
    January February March April May June July August September October November December
    President Mayor Minister Prime Chairman Leader Governor Candidate Party Director Opposition Opposition's According Supporters
    State Capital City Municipality Metropolitan Provincial Local National Council Election Elections Turkish Kurdish English European
    American Western Eastern Islamist Secular Republican Sunday's Mr Mrs Ms Dr Bay Bayan Başkan Başkanı Cumhurbaşkanı Genel Belediye
    Büyükşehir İl İlçe Seçim Seçimleri Pazar Ocak Şubat Mart Nisan Mayıs Haziran Temmuz Ağustos Eylül Ekim Kasım Aralık Bu Bir Ve Da De
    Ancak Ayrıca Göre Türk Kürt Yüksek Kurulu Ajansı Lider Lideri Adayı Aday Also However Meanwhile Yet So Then There Here Many Some
    Analysts Voters Citizens People Government Presidency Palace Speech Balcony Union All Every Most Both Each No Not One Two
    Results Official Officials Voter Turnout Markets Without Under Over Until Once Now Later Earlier Just Only
    Belediyesi Belediye Başkanlığı Başkanlığını Büyükşehir Meclisi Partisi Parti Sonuçları Seçimleri Seçimlerde
    Mediterranean Aegean Anatolia Anatolian Black Sea Marmara Bosphorus Southeast Northwest Northeast Southwest Akdeniz Ege Karadeniz Anadolu
    """.split()
)
_WORD = re.compile(r"[A-ZÇĞİÖŞÜÂÎÛ][\wÇĞİÖŞÜçğıöşüâîû]*(?:['’][a-zçğıöşü]+)?")
_LOWER_WORD = re.compile(r"(?<![\w'’])[a-zçğıöşü]{5,}(?![\w'’])")
_LOCATIVE = re.compile(r"['’](?:d[ae]|t[ae]|d[ae]n|t[ae]n|d[ae]ki|t[ae]ki)$", re.I)


@dataclass(frozen=True)
class Ref:
    kind: str  # "candidate" | "party" | "area" | "person" | "country" | "organisation"
    id: str  # race_id:candidate_id, party code, area id, person name, country code, organisation name
    name: str  # canonical name
    detail: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Mention:
    text: str
    start: int
    end: int
    ref: Ref
    method: str
    confidence: float
    alternatives: int = 0  # other refs that matched equally well

    def to_dict(self) -> dict[str, Any]:
        d = {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "kind": self.ref.kind,
            "id": self.ref.id,
            "name": self.ref.name,
            "method": self.method,
            "confidence": round(self.confidence, 3),
        }
        d.update(self.ref.detail)
        if self.alternatives:
            d["ambiguous_with"] = self.alternatives
        return d


@dataclass
class Linked:
    mentions: list[Mention]
    unlinked: list[tuple[str, int, int]]  # names we could not link: (text, start, end)


_ACCEPT = 0.68  # fuzzy ratio 80 of sound keys, scaled by 0.85
_AREA_FUZZY = 88.0  # place names need a closer match: common words collide with the many district names


class Linker:
    """Indexes of one election's names; reuse it for many articles (building it is the slow part)."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        e = facts.election
        self.people: NameIndex[Ref] = NameIndex(fuzzy_min=80.0)
        self.surnames_top: NameIndex[Ref] = NameIndex(fuzzy_min=85.0)
        self.exact: NameIndex[Ref] = NameIndex()  # parties, countries, organisations: never fuzzy
        self.areas: NameIndex[Ref] = NameIndex(fuzzy_min=_AREA_FUZZY, fuzzy_min_len=6)
        self.phrases: list[tuple[str, Ref]] = []
        top = set(e.info.top_offices)
        cand_names: set[str] = set()
        for race in e.races.values():
            for c in race.candidates:
                if not c.name or c.id == "IND" or c.name == c.party or "(" in c.name:
                    continue
                ref = Ref("candidate", f"{race.id}:{c.id}", c.name, {"race_id": race.id, "party": c.party, "area_id": race.area_id, "top": race.office in top})
                cand_names.add(fold(c.name))
                parts = c.name.split()
                self.people.add(c.name, ref)
                # A surname alone must be at least three letters ("Al" would match "All").
                if len(parts) >= 2 and len(fold(parts[-1])) >= 3:
                    self.people.add(parts[-1], ref)
                    if race.office in top:
                        self.surnames_top.add(parts[-1], ref)
                if len(parts) >= 3:
                    self.people.add(f"{parts[0]} {parts[-1]}", ref)
                    self.people.add(" ".join(parts[-2:]), ref)
        lex = facts.lexicon
        for p in lex.people:
            if fold(p["name"]) in cand_names:
                continue  # a candidate after all: the candidate entry wins
            ref = Ref("person", p["name"], p["name"], {"role": p.get("role", "")})
            self.people.add(p["name"], ref)
            parts = p["name"].split()
            if len(parts) >= 3:
                self.people.add(f"{parts[0]} {parts[-1]}", ref)
                self.people.add(" ".join(parts[-2:]), ref)
            for s in p.get("short", ()):
                self.people.add(s, ref)
        for code, party in e.parties.items():
            ref = Ref("party", code, party.short_name, {"full_name": party.name})
            for n in {code, party.short_name, party.name, *lex.party_aliases.get(code, ())}:
                self._add_exact(n, ref)
        root = e.root_id
        root_ref = Ref("area", root, e.areas[root].name, {"area_kind": e.areas[root].kind})
        for n in {e.areas[root].name, *lex.country_names}:
            self._add_exact(n, root_ref)
            self.areas.add(n, root_ref)
        for a in e.areas.values():
            if a.id != root:
                self.areas.add(a.name, Ref("area", a.id, a.name, {"area_kind": a.kind}))
        for aid, names in lex.area_aliases.items():
            if aid in e.areas:
                a = e.areas[aid]
                for n in names:
                    self._add_exact(n, Ref("area", a.id, a.name, {"area_kind": a.kind}))
        for org in lex.organisations:
            self._add_exact(org, Ref("organisation", org, org))
        own = {fold(n) for n in (e.areas[root].name, *lex.country_names)}
        for code, names in load_countries().items():
            if code == e.info.country:
                continue
            for n in names:
                if fold(n) not in own and len(fold(n)) >= 3:
                    self._add_exact(n, Ref("country", code, names[0]))
        self._phrase_re = self._compile_phrases()
        self._phrase_names = {n for n, _ in self.phrases}
        self._memo: dict[tuple[int, str, bool], list[NameMatch[Ref]]] = {}

    def _add_exact(self, name: str, ref: Ref) -> None:
        self.exact.add(name, ref)
        if len(fold(name).split()) >= 2:
            self.phrases.append((name, ref))

    def _compile_phrases(self) -> re.Pattern[str] | None:
        pats = {}
        for name, ref in self.phrases:
            toks = fold_chars(name).split()
            if toks:
                pats.setdefault(r"\s+".join(re.escape(t) for t in toks), ref)
        self._phrase_refs = pats
        if not pats:
            return None
        alts = sorted(pats, key=len, reverse=True)
        return re.compile(r"(?<![a-z0-9])(?:" + "|".join(f"({p})" for p in alts) + r")(?![a-z0-9])")

    @cached_property
    def _phrase_by_group(self) -> list[Ref]:
        assert self._phrase_re is not None
        alts = sorted(self._phrase_refs, key=len, reverse=True)
        return [self._phrase_refs[p] for p in alts]

    # --- the passes ---------------------------------------------------------------
    def link(self, text: str, language: str, quotes: list[Span]) -> Linked:
        mentions: list[Mention] = []
        taken = bytearray(len(text))
        folded = fold_chars(text)
        if self._phrase_re is not None:
            for m in self._phrase_re.finditer(folded):
                ref = self._phrase_by_group[m.lastindex - 1]  # type: ignore[operator]
                method = "exact" if text[m.start() : m.end()] in self._phrase_names else "folded"
                mentions.append(Mention(text[m.start() : m.end()], m.start(), m.end(), ref, method, 1.0 if method == "exact" else 0.97))
                taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
        unlinked: list[tuple[str, int, int]] = []
        seen_full: dict[str, Ref] = {}  # fold(surname) -> candidate/person named in full earlier
        area_ids_in_text: set[str] = set()
        # Sequences of capitalised words separated by single spaces or hyphens.
        words = [w for w in _WORD.finditer(text) if not taken[w.start()]]
        seqs: list[list[re.Match[str]]] = []
        for w in words:
            if seqs and text[seqs[-1][-1].end() : w.start()] in (" ",) and not taken[w.start() - 1]:
                seqs[-1].append(w)
            else:
                seqs.append([w])
        pending: list[tuple[list[re.Match[str]], int]] = []
        for seq in seqs:
            i = 0
            while i < len(seq):
                done = False
                if fold(_strip_suffix(seq[i].group(0))) in _NOT_NAMES:
                    pending.append((seq[i : i + 1], 0))
                    i += 1
                    continue
                # A party, organisation or country in front of a name ("AKP's Memduh
                # Büyükkılıç", "CHP'li Muhittin Böcek") is its own mention, not part of a
                # longer fuzzy match.
                lead = self.exact.lookup(_strip_suffix(seq[i].group(0)), fuzzy=False) if len(seq) - i >= 2 else []
                if lead and lead[0].confidence >= 0.97:
                    w = seq[i]
                    core = _strip_suffix(w.group(0))
                    mentions.append(Mention(core, w.start(), w.start() + len(core), lead[0].value, lead[0].method, lead[0].confidence))
                    i += 1
                    continue
                for j in range(len(seq), i, -1):
                    ws = seq[i:j]
                    # Inside a longer name that did not link as a whole ("Sinan Urgen"), a
                    # single word must not be guessed fuzzily ("Urgen" is not "Urgan").
                    in_longer = j - i == 1 and _name_words(seq) >= 2
                    mention = self._link_window(text, ws, seen_full, area_ids_in_text, language, strict=in_longer)
                    if mention is not None:
                        mentions.append(mention)
                        if mention.ref.kind == "area":
                            area_ids_in_text.add(mention.ref.id)
                        if mention.ref.kind in ("candidate", "person") and len(ws) >= 2:
                            seen_full[fold(mention.ref.name.split()[-1])] = mention.ref
                        i = j
                        done = True
                        break
                if not done:
                    pending.append((seq[i : i + 1], 0))
                    i += 1
        # Unlinked names: runs of adjacent unlinked, non-stop capitalised words.
        run: list[re.Match[str]] = []

        def flush() -> None:
            if run:
                s, e = run[0].start(), run[-1].end()
                name = text[s:e]
                sentence_start = s == 0 or text[:s].rstrip()[-1:] in {".", "!", "?", "“", '"', "\n", ""}
                if len(run) >= 2 or not sentence_start:
                    unlinked.append((_strip_suffix(name), s, s + len(_strip_suffix(name))))
            run.clear()

        prev_end = -10
        for ws, _ in pending:
            w = ws[0]
            if fold(_strip_suffix(w.group(0))) in _NOT_NAMES or w.group(0).isupper() and len(w.group(0)) <= 2:
                flush()
                prev_end = -10
                continue
            if run and text[prev_end : w.start()] != " ":
                flush()
            run.append(w)
            prev_end = w.end()
        flush()
        # Garbled lower-case names.
        for m in _LOWER_WORD.finditer(text):
            if taken[m.start()]:
                continue
            lone_quote = any(q.start <= m.start() and m.end() <= q.end and not text[q.start + 1 : q.end - 1].strip(" ,.").count(" ") for q in quotes)
            if language != "en" and not lone_quote:
                continue
            for nm in self._lookup(self.surnames_top, m.group(0), True):
                if nm.method in ("fuzzy",) and nm.score >= 85.0:
                    ref = seen_full.get(fold(nm.name)) or nm.value
                    mentions.append(Mention(m.group(0), m.start(), m.end(), ref, "fuzzy", nm.confidence))
                    break
        mentions.sort(key=lambda m: m.start)
        return Linked(mentions, unlinked)

    def _lookup(self, index: NameIndex[Ref], text: str, fuzzy: bool) -> list[NameMatch[Ref]]:
        """Index lookups memoised per linker: articles repeat names, and fuzzy lookups cost ~0.4 ms."""
        key = (id(index), text, fuzzy)
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > 50_000:
                self._memo.clear()
            hit = self._memo[key] = index.lookup(text, fuzzy=fuzzy)
        return hit

    def _link_window(
        self, text: str, ws: list[re.Match[str]], seen_full: dict[str, Ref], areas_seen: set[str], language: str, *, strict: bool = False
    ) -> Mention | None:
        s, e = ws[0].start(), ws[-1].end()
        raw = text[s:e]
        core = _strip_suffix(raw)
        locative = bool(_LOCATIVE.search(raw)) or bool(re.search(r"\b(?:in|at|of)\s+(?:the\s+)?$", text[max(0, s - 8) : s], re.I))
        single = len(ws) == 1
        matches: list[NameMatch[Ref]] = []
        matches += self._lookup(self.exact, core, False)
        people = self._lookup(self.people, core, not strict and not (single and core.isupper()))
        if single:
            # One word is a surname. Fuzzy only for top-race candidates and close (>= 88);
            # a district winner's surname only with a full-name mention or its place in the text.
            people = [
                p
                for p in people
                if (p.method != "fuzzy" or (p.value.detail.get("top") and p.score >= 88.0))
                and (
                    p.value.kind != "candidate"
                    or p.value.detail.get("top")
                    or seen_full.get(fold(core)) is p.value
                    or _province(p.value.detail.get("area_id", "")) in {_province(a) for a in areas_seen}
                )
            ]
        matches += people
        areas = self._lookup(self.areas, core, not strict and (not single or len(core) >= 6))
        matches += areas
        matches = [m for m in matches if m.confidence >= _ACCEPT]
        if not matches:
            return None
        best = max(m.confidence for m in matches)
        pool = [m for m in matches if m.confidence >= best - 0.05]

        def rank(m: NameMatch[Ref]) -> tuple:
            r = m.value
            coref = r.kind in ("candidate", "person") and seen_full.get(fold(core.split()[-1])) is r
            area_pref = r.kind == "area" and (locative or r.detail.get("area_kind") in ("country", "province") and not coref_any)
            return (
                coref,
                # A well-known person named by surname ("President Erdogan") before a
                # district candidate who shares the surname.
                r.kind == "person" and not coref_any,
                area_pref and not coref_any,
                r.kind in ("party", "organisation", "country"),
                r.kind == "candidate"
                and r.detail.get("area_id", "").split(".")[:2]
                and any(a.startswith(".".join(r.detail["area_id"].split(".")[:2])) for a in areas_seen),
                r.kind == "candidate" and r.detail.get("top", False),
                r.kind == "person",
                r.kind == "area" and r.detail.get("area_kind") == "province",
                m.confidence,
            )

        coref_any = any(m.value.kind in ("candidate", "person") and seen_full.get(fold(core.split()[-1])) is m.value for m in pool)
        pool.sort(key=rank, reverse=True)
        top = pool[0]
        alts = sum(1 for m in pool[1:] if rank(m) == rank(top) and m.value != top.value)
        conf = top.confidence * (0.8 if alts else 1.0)
        return Mention(text[s : s + len(core)], s, s + len(core), top.value, top.method, conf, alts)


def _province(area_id: str) -> str:
    return ".".join(area_id.split(".")[:2])


def _name_words(seq: list[re.Match[str]]) -> int:
    return sum(1 for w in seq if fold(_strip_suffix(w.group(0))) not in _NOT_NAMES)


def _strip_suffix(w: str) -> str:
    """'Turkey's' -> 'Turkey', "Ankara'da" -> 'Ankara' (a Turkish case suffix follows an apostrophe)."""
    return re.sub(r"['’][A-Za-zçğıöşüÇĞİÖŞÜ]*$", "", w)
