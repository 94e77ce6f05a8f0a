#!/bin/sh
# Read p99 under a full-speed replay with the projection worker running (docs/benchmarks.md, API
# section): bench_api.py starts the worker only with its SSE test; here one SSE client connects
# first, as the website's visitors would. Usage: sh bench/reads_with_worker.sh [port]
# (needs wrk: sh scripts/install-system-deps.sh bench). Environment passes through to the server
# (e.g. SANDIK_PROJECTION_PROCESSES=2).
set -e
P=${1:-18111}
HERE=$(cd "$(dirname "$0")/.." && pwd)
S="$HERE/.venv/bin/sandik"
DIR=$(mktemp -d)
"$S" serve --db "$DIR/w.sqlite" --port "$P" --replay tr-2024 --speed max --quiet > "$DIR/serve.log" 2>&1 &
RP=$!
trap 'kill $CP $RP 2>/dev/null; wait $RP 2>/dev/null; rm -rf "$DIR"' EXIT
until curl -s "127.0.0.1:$P/api/health" 2>/dev/null | grep -q ok; do sleep 0.2; done
curl -sN "127.0.0.1:$P/api/elections/current/events" > /dev/null &
CP=$!
B="http://127.0.0.1:$P/api/elections/current"
U="$B/races/tr.34:metropolitan_mayor/results"
until curl -s "$B/version" | "$HERE/.venv/bin/python" -c "import sys,json; sys.exit(0 if json.load(sys.stdin)['version']>20000 else 1)"; do sleep 0.2; done
curl -s "$U" > /dev/null
V0=$(curl -s "$B/version")
wrk -t1 -c50 -d10s --latency "$U" | grep -E "Requests/sec|50%|99%"
V1=$(curl -s "$B/version")
echo "versions: $V0 -> $V1"
echo "projections: $(curl -s "$B/projections" | head -c 80)"
echo "load average: $(cat /proc/loadavg)"
