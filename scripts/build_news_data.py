"""Build the data files of sandik.news (run by hand; the outputs are committed).

    python scripts/build_news_data.py [--shared ../shared/data]

Writes, under src/sandik/news/data/:
- countries.json: every country and territory name in English and Turkish,
  from the Unicode CLDR via Babel (a dev dependency only: the package reads the
  JSON at run time). Used to flag places foreign to an election.
- tr-2024-local.electorate.json, tr-2019-local.electorate.json: the whole
  electorate, voters and valid votes of the elections, nationally and per
  province. Our election model holds mayor races only, and village voters of
  the 51 non-metropolitan provinces vote in no mayor race, so the model's boxes
  hold 57.8 M registered voters where the electorate is 61.5 M. The
  electorate is the registered voters of the 30 metropolitan-mayor races plus
  the 51 provincial-council races (data README), read from the official
  totals in ../shared/data/tr-local-2019-2024-districts/.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from babel import Locale

from sandik.datasets.turkish_names import slug

OUT = Path(__file__).resolve().parents[1] / "src" / "sandik" / "news" / "data"
SOURCE_DIR = "tr-local-2019-2024-districts"


def countries() -> dict:
    en, tr = Locale("en").territories, Locale("tr").territories
    # Two-letter codes are countries and territories; three-digit codes are regions ("Europe").
    codes = sorted(c for c in en if len(c) == 2 and c.isalpha() and c not in {"ZZ", "XA", "XB", "EU", "EZ", "UN", "QO"})
    names = {c: {en[c], tr.get(c, en[c])} for c in codes}
    # Everyday short forms CLDR does not list as the main name.
    for c, extra in {
        "US": ["USA", "United States of America", "America", "ABD", "Amerika"],
        "GB": ["UK", "Britain", "Great Britain", "England", "İngiltere"],
        "NL": ["Holland"],
        "KR": ["Korea"],
        "CZ": ["Czech Republic"],
    }.items():
        names[c] |= set(extra)
    return {
        "source": f"Unicode CLDR via Babel {__import__('babel').__version__}",
        # The English name first: it is the one reports show.
        "countries": {c: [en[c]] + sorted(v - {en[c]}) for c, v in names.items()},
    }


def electorate(shared: Path, year: str) -> dict:
    d = shared / SOURCE_DIR
    files = (
        f"baskanlik_summary_df_{year}__baskanlik_iller_summary_df_{year}.csv",  # 30 metropolitan-mayor races
        f"meclis_summary_df_{year}__meclis_iller_summary_df_{year}.csv",  # 51 provincial-council races
    )
    provinces: dict[str, dict] = {}
    for f in files:
        with open(d / f, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                provinces[slug(row["Province"])] = {
                    "registered": int(float(row["kayitli secmen sayisi"])),
                    "voters": int(float(row["oy kullanan secmen sayisi"])),
                    "valid": int(float(row["gecerli oy toplami"])),
                    "race": "metropolitan mayor" if f.startswith("baskanlik") else "provincial council",
                }
    if len(provinces) != 81:
        raise SystemExit(f"{year}: expected 81 provinces, found {len(provinces)}")
    total = {k: sum(p[k] for p in provinces.values()) for k in ("registered", "voters", "valid")}
    return {
        "source": f"official YSK totals via ../shared/data/{SOURCE_DIR} ({', '.join(files)})",
        "definition": "registered voters, voters and valid votes of the 30 metropolitan-mayor races and the 51 provincial-council races: the whole electorate",
        "national": total,
        "provinces": dict(sorted(provinces.items())),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "countries.json").write_text(json.dumps(countries(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    for year in ("2024", "2019"):
        data = electorate(Path(args.shared), year)
        (OUT / f"tr-{year}-local.electorate.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(year, data["national"])


if __name__ == "__main__":
    main()
