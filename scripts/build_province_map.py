"""Build the website's province map from ../shared/data/tr-provinces-geojson/tr-cities.json.

Projects the 81 province boundaries (OpenStreetMap-derived, Apache-2.0; see
src/sandik/data/NOTICE.md) with a Mercator projection, simplifies them with
Douglas-Peucker in screen pixels, drops slivers, and writes sandik's own small
format: SVG path strings per province, keyed by the election's area id.

    python scripts/build_province_map.py [--src FILE] [--out FILE] [--width 1000] [--tolerance 0.8]

Output (src/sandik/web/static/map/tr-provinces.v1.json):
    {"format": "sandik-map/1", "width": W, "height": H, "source": ..., "licence": ...,
     "areas": [{"id": "tr.01", "code": 1, "name": "Adana", "d": "M...Z", "label": [x, y]}]}
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "tr-provinces-geojson" / "tr-cities.json"
DEFAULT_OUT = ROOT / "src" / "sandik" / "web" / "static" / "map" / "tr-provinces.v1.json"

Point = tuple[float, float]


def mercator(lon: float, lat: float) -> Point:
    return math.radians(lon), math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def _seg_dist(p: Point, a: Point, b: Point) -> float:
    (x, y), (x1, y1), (x2, y2) = p, a, b
    dx, dy = x2 - x1, y2 - y1
    if dx == dy == 0:
        return math.hypot(x - x1, y - y1)
    t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
    return math.hypot(x - (x1 + t * dx), y - (y1 + t * dy))


def simplify(pts: list[Point], tol: float) -> list[Point]:
    """Douglas-Peucker, iterative (rings have thousands of points)."""
    if len(pts) < 4:
        return pts
    keep = [False] * len(pts)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        i, j = stack.pop()
        best, idx = 0.0, -1
        for k in range(i + 1, j):
            d = _seg_dist(pts[k], pts[i], pts[j])
            if d > best:
                best, idx = d, k
        if best > tol and idx > 0:
            keep[idx] = True
            stack.append((i, idx))
            stack.append((idx, j))
    return [p for p, k in zip(pts, keep) if k]


def ring_area(pts: list[Point]) -> float:
    return 0.5 * abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1])))


def centroid(pts: list[Point]) -> Point:
    a = cx = cy = 0.0
    for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
        f = x1 * y2 - x2 * y1
        a += f
        cx += (x1 + x2) * f
        cy += (y1 + y2) * f
    if a == 0:
        return pts[0]
    return cx / (3 * a), cy / (3 * a)


def build(src: Path, width: int, tol: float) -> dict:
    doc = json.loads(src.read_text(encoding="utf-8"))
    feats = doc["features"]
    polys: list[tuple[dict, list[list[list[Point]]]]] = []
    for f in feats:
        g = f["geometry"]
        rings = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        polys.append((f["properties"], [[[mercator(lon, lat) for lon, lat in ring] for ring in poly] for poly in rings]))
    xs = [x for _, ps in polys for poly in ps for ring in poly for x, _ in ring]
    ys = [y for _, ps in polys for poly in ps for ring in poly for _, y in ring]
    minx, maxx, miny, maxy = min(xs), max(xs), min(ys), max(ys)
    scale = width / (maxx - minx)
    height = math.ceil((maxy - miny) * scale)

    def px(p: Point) -> Point:
        return ((p[0] - minx) * scale, (maxy - p[1]) * scale)  # screen y grows downwards

    areas = []
    for props, ps in polys:
        parts = []
        biggest: tuple[float, list[Point]] = (0.0, [])
        for poly in ps:
            for k, ring in enumerate(poly):
                sp = simplify([px(p) for p in ring], tol)
                if sp[0] == sp[-1]:
                    sp = sp[:-1]
                a = ring_area(sp) if len(sp) >= 3 else 0.0
                if len(sp) < 3 or a < 2.0:  # islets and holes smaller than ~2 px^2 vanish at this size
                    continue
                if k == 0 and a > biggest[0]:
                    biggest = (a, sp)
                parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in sp) + "Z")
        code = int(props["number"])
        cx, cy = centroid(biggest[1])
        areas.append({"id": f"tr.{code:02d}", "code": code, "name": props["name"], "d": "".join(parts), "label": [round(cx, 1), round(cy, 1)]})
    areas.sort(key=lambda a: a["code"])
    return {
        "format": "sandik-map/1",
        "width": width,
        "height": height,
        "projection": "mercator",
        "source": "alpers/Turkey-Maps-GeoJSON tr-cities.json, geometry derived from OpenStreetMap; simplified by scripts/build_province_map.py",
        "licence": "Apache-2.0 (compilation); map data (c) OpenStreetMap contributors",
        "areas": areas,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--tolerance", type=float, default=0.8, help="Douglas-Peucker tolerance in output pixels")
    a = ap.parse_args()
    m = build(a.src, a.width, a.tolerance)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(m, ensure_ascii=False, separators=(",", ":"))
    a.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {a.out} ({len(m['areas'])} provinces, {len(text):,} bytes, {m['width']}x{m['height']})")


if __name__ == "__main__":
    main()
