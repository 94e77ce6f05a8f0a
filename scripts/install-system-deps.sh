#!/bin/sh
# Debian packages sandik's tests need. Idempotent; does nothing when all are present.
# `install-system-deps.sh bench` also installs what the benchmarks need (wrk, for bench/bench_api.py).
set -e
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ "$1" = "bench" ]; then
  command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
fi
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
fi
