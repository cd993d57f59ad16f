#!/usr/bin/env bash
# Where the CPU of a 100k-customer load goes, and what DuckDB alone costs.
#
#   benches/duckdb/floor.sh [SIZE]     (default 100000; needs python3 with duckdb 1.2.0)
#
# Builds the release `weft`, serves the sandbox (rate limits off), runs
# `weft run` for Stripe customers into DuckDB (10,000-row loads, memory_limit
# 32MB, as the e2e bench) under /usr/bin/time, reads the sandbox's CPU from
# /proc, then loads the staged Parquet with DuckDB alone (benches/duckdb/floor.py)
# and reports the peak RSS of opening the warehouse and reading one table.
set -euo pipefail
SIZE=${1:-100000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/weft/target}
# shellcheck source=../weft.sh
source "$ROOT/benches/weft.sh"
build_weft release

WORK=$(mktemp -d /tmp/weft-floor.XXXXXX)
SANDBOX_PID=
cleanup() {
    if [[ -n $SANDBOX_PID ]]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
start_sandbox "$SIZE" "$WORK/sandbox.out"
write_config "$WORK"
cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$SANDBOX_PID/stat"; }

before=$(cpu)
/usr/bin/time -f "weft run: wall_s=%e user_s=%U sys_s=%S peak_rss_kib=%M" \
    "$WEFT" run --config "$WORK/weft.toml" >"$WORK/run.out" 2>"$WORK/run.err" \
    || { tail -20 "$WORK/run.err" >&2; exit 1; }
after=$(cpu)
grep -E '^customers' "$WORK/run.out"
tail -1 "$WORK/run.err"
awk -v a="$after" -v b="$before" 'BEGIN { printf "sandbox: cpu_s=%.2f\n", a - b }'
python3 "$ROOT/benches/duckdb/floor.py" "$WORK/stage" append
python3 "$ROOT/benches/duckdb/floor.py" "$WORK/stage" merge
SETS="SET threads=1; SET checkpoint_threshold='1GB'" \
    python3 "$ROOT/benches/duckdb/floor.py" "$WORK/stage" append
/usr/bin/time -f "weft state show (open DuckDB, read _weft_state): peak_rss_kib=%M" \
    "$WEFT" state show --config "$WORK/weft.toml" >/dev/null
