"""Benchmark and accuracy of sandik.news: checking a 1,000-word article (limit 1 s), and the share of
claims classified correctly on the test articles (goal >= 95%).

    .venv/bin/python bench/bench_news.py

Prints every figure beside its ratio to the limit. "cold" includes building the facts (final results,
scoreboards) and the name indexes of the election; "warm" reuses them, as the API does.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandik.news.claims import Checker  # noqa: E402
from sandik.news.evaluate import Score, score  # noqa: E402
from sandik.news.facts import Facts  # noqa: E402
from tests.news_support import ARTICLES, SHARED_ARTICLES, elections  # noqa: E402

LIMIT_S = 1.0
GOAL = 0.95


def article_of(words: int) -> str:
    texts = [p.read_text(encoding="utf-8") for p in sorted(ARTICLES.glob("en_*.txt"))]
    texts.append((SHARED_ARTICLES / "000_7ba77b244dcf2825.txt").read_text(encoding="utf-8"))
    out: list[str] = []
    n = 0
    i = 0
    while n < words:
        t = texts[i % len(texts)]
        out.append(t)
        n += len(t.split())
        i += 1
    return "\n".join(out)


def main() -> None:
    prev, e = elections()
    text = article_of(1000)
    nwords = len(text.split())
    cold = []
    for _ in range(3):
        t0 = time.perf_counter()
        ch = Checker(Facts.build(e, None, prev))
        res = ch.check(text)
        cold.append(time.perf_counter() - t0)
    warm = []
    for _ in range(10):
        t0 = time.perf_counter()
        res = ch.check(text)
        warm.append(time.perf_counter() - t0)
    print(f"article: {nwords} words, {len(res.claims)} claims")
    c, w = cold[0], statistics.median(warm)
    print(f"check, cold (facts + indexes + check, first run in the process): {c:.3f} s  ratio to {LIMIT_S:.0f} s limit: {c / LIMIT_S:.2f}")
    print(f"check, warm (check only, median of 10): {w:.3f} s  ratio to {LIMIT_S:.0f} s limit: {w / LIMIT_S:.2f}")
    # The whole command, as a user runs it: Python start-up, imports, loading both election files.
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        art = Path(d) / "article.txt"
        art.write_text(text, encoding="utf-8")
        exe = Path(sys.executable).with_name("sandik")
        t0 = time.perf_counter()
        subprocess.run([str(exe), "--help"], cwd=d, check=True, capture_output=True)
        base = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([str(exe), "check-article", str(art), "--json"], cwd=d, check=True, capture_output=True)
        cli = time.perf_counter() - t0
    print(f"`sandik --help` (CLI start-up and imports of every area, for reference): {base:.3f} s")
    print(
        f"`sandik check-article --json` end to end (start-up + loading 2 elections + check): {cli:.3f} s  ratio to {LIMIT_S:.0f} s limit: {cli / LIMIT_S:.2f}; minus start-up: {cli - base:.3f} s  ratio: {(cli - base) / LIMIT_S:.2f}"
    )
    for group, pattern in (("own test articles", "*.expected.json"),):
        total = Score()
        for exp_path in sorted(ARTICLES.glob(pattern)):
            exp = json.loads(exp_path.read_text(encoding="utf-8"))
            if "article" in exp:
                t = (SHARED_ARTICLES / exp["article"]).read_text(encoding="utf-8")
                name = "shared " + exp["article"]
            else:
                txt = exp_path.with_name(exp_path.name.replace(".expected.json", ".txt"))
                t = txt.read_text(encoding="utf-8")
                name = txt.name
            s = score(t, ch.check(t), exp, name=name)
            print(f"  {name}: {s.correct}/{s.total} correct ({100 * s.accuracy:.1f}%)")
            total.merge(s)
        print(
            f"{group} + shared: {total.correct}/{total.total} claims classified correctly = {100 * total.accuracy:.1f}%  ratio to {100 * GOAL:.0f}% goal: {total.accuracy / GOAL:.3f}"
        )
        for err in total.errors:
            print("   ", err)


if __name__ == "__main__":
    main()
