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
size=${1:-100000}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release -q -p weft-runner --manifest-path "$root/Cargo.toml"
target=${CARGO_TARGET_DIR:-$root/target}
weft="$target/release/weft"
work=$(mktemp -d)
trap 'kill "$sandbox" 2>/dev/null || true; rm -rf "$work"' EXIT

"$weft" sandbox --port 0 --size "$size" --no-rate-limits >"$work/sandbox.out" 2>&1 &
sandbox=$!
for _ in $(seq 100); do grep -q '^stripe' "$work/sandbox.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '/^stripe/ {print $2}' "$work/sandbox.out")
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$sandbox/stat"; }

printf %s sk_test_weft_sandbox >"$work/key"
cat >"$work/weft.toml" <<TOML
[warehouse]
kind = "duckdb"
path = "$work/w.duckdb"
memory_limit = "32MB"
[stage]
url = "$work/stage"
[[pipelines]]
name = "stripe"
connector = "stripe"
streams = ["customers"]
checkpoint_rows = 10000
[pipelines.config]
base_url = "$url"
api_key = { file = "$work/key" }
requests_per_second = 100000
TOML

before=$(cpu)
/usr/bin/time -f "weft run: wall_s=%e user_s=%U sys_s=%S peak_rss_kib=%M" \
    "$weft" run --config "$work/weft.toml" >"$work/run.out" 2>"$work/run.err" || {
    cat "$work/run.err"; exit 1; }
after=$(cpu)
grep -E '^customers' "$work/run.out"
tail -1 "$work/run.err"
awk -v a="$after" -v b="$before" 'BEGIN {printf "sandbox: cpu_s=%.2f\n", a - b}'
python3 "$root/benches/duckdb/floor.py" "$work/stage" append
python3 "$root/benches/duckdb/floor.py" "$work/stage" merge
SETS="SET threads=1; SET checkpoint_threshold='1GB'" \
    python3 "$root/benches/duckdb/floor.py" "$work/stage" append
/usr/bin/time -f "weft state show (open DuckDB, read _weft_state): peak_rss_kib=%M" \
    "$weft" state show --config "$work/weft.toml" >/dev/null
