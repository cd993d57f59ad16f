#!/usr/bin/env bash
# Peer comparison in the same run: dlt (rest_api source -> Parquet -> DuckDB)
# and weft (Stripe connector -> staged Parquet -> DuckDB) read the same
# sandbox Stripe /v1/customers, alternating dlt, weft, dlt, weft, ...
#
#   benches/peer/compare.sh [SIZE=100000] [ROUNDS=2]
#
# Env: WEFT_PROFILE=release|debug (default release: builds `weft` with
# `cargo build --release -p weft-runner`), WEFT_PEER_VENV (default
# /root/.cache/weft/peer-venv; created with `dlt[duckdb,parquet]` if missing),
# CARGO_TARGET_DIR (default /root/.cache/weft/target), KEEP=1 keeps the runs,
# WEFT_PEER_WAREHOUSE=postgres loads both into a PostgreSQL server started on
# loopback for the run (weft stages locally, as dlt does; dlt inserts rows).
#
# Records/s = rows / wall time of the whole process (start-up included, for
# both); dlt's own pipeline time (imports excluded) is printed beside it.
# Peak RSS from `/usr/bin/time -v` when present, else getrusage of children.
set -euo pipefail

SIZE=${1:-100000}
ROUNDS=${2:-2}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PROFILE=${WEFT_PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/weft/target}
VENV=${WEFT_PEER_VENV:-/root/.cache/weft/peer-venv}
KEY=sk_test_weft_sandbox # weft_sandbox::DEFAULT_STRIPE_KEY, for dlt

# --- weft ---------------------------------------------------------------------
# shellcheck source=../weft.sh
source "$ROOT/benches/weft.sh"
build_weft "$PROFILE"

# --- dlt in its own venv -------------------------------------------------------
if ! "$VENV/bin/python" -c 'import dlt, duckdb, pyarrow' 2>/dev/null; then
    echo "creating $VENV with dlt[duckdb,parquet] ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q 'dlt[duckdb,parquet]'
fi
WAREHOUSE=${WEFT_PEER_WAREHOUSE:-duckdb}
if [[ $WAREHOUSE == postgres ]] && ! "$VENV/bin/python" -c 'import psycopg2' 2>/dev/null; then
    "$VENV/bin/pip" install -q 'dlt[postgres]'
fi
PY="$VENV/bin/python"
DLT_VERSION=$("$PY" -c 'import dlt; print(dlt.__version__)')

WORK=$(mktemp -d /tmp/weft-peer.XXXXXX)
SANDBOX_PID=
PG_PID=
cleanup() {
    if [[ -n $SANDBOX_PID ]]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    if [[ -n $PG_PID ]]; then exec 3>&-; wait "$PG_PID" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- the sandbox, in its own process (its memory is not counted) --------------
start_sandbox "$SIZE" "$WORK/sandbox.out"

# --- PostgreSQL, when asked: a server of its own, stopped when fd 3 closes -----
PG_URL=
if [[ $WAREHOUSE == postgres ]]; then
    (cd "$ROOT" && cargo build --release -q -p weft-bench-e2e --bin e2e)
    mkfifo "$WORK/pg.in"
    "$CARGO_TARGET_DIR/release/e2e" --postgres-server <"$WORK/pg.in" >"$WORK/pg.out" 2>"$WORK/pg.err" &
    PG_PID=$!
    exec 3>"$WORK/pg.in"
    for _ in $(seq 300); do
        PG_URL=$(head -1 "$WORK/pg.out" 2>/dev/null || true)
        [[ -n $PG_URL ]] && break
        sleep 0.1
    done
    [[ -n $PG_URL ]] || { echo "PostgreSQL did not start:" >&2; cat "$WORK/pg.err" >&2; exit 1; }
fi

# measure NAME CMD...: runs CMD with stdout to $WORK/NAME.out and sets
# SECONDS_TAKEN and PEAK_KIB.
measure() {
    local name=$1
    shift
    local start end
    start=$(date +%s.%N)
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
        PEAK_KIB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/$name.time")
    else
        "$PY" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(r)' "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
        PEAK_KIB=$(cat "$WORK/$name.time")
    fi
    end=$(date +%s.%N)
    SECONDS_TAKEN=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
}

run_dlt() {
    local dir="$WORK/dlt-$1"
    mkdir -p "$dir"
    local target=()
    # dlt insists on a password; the test server trusts loopback and ignores it.
    if [[ -n $PG_URL ]]; then target=(--postgres-url "${PG_URL/weft@/weft:unused@}" --dataset "stripe_dlt_$1"); fi
    measure "dlt-$1" "$PY" "$ROOT/benches/peer/dlt_stripe.py" --base-url "$BASE" --api-key "$KEY" --dir "$dir" "${target[@]}" \
        || { echo "dlt failed:" >&2; tail -20 "$WORK/dlt-$1.err" >&2; exit 1; }
    ROWS=$(sed -n 's/^dlt rows=\([0-9]*\).*/\1/p' "$WORK/dlt-$1.out")
    INNER=$(sed -n 's/^dlt .*seconds=\([0-9.]*\).*/\1/p' "$WORK/dlt-$1.out")
}

run_weft() {
    local dir="$WORK/weft-$1"
    mkdir -p "$dir"
    write_config "$dir"
    if [[ -n $PG_URL ]]; then
        # The same pipeline into PostgreSQL, schema stripe_weft_N, staged locally.
        printf '%s' "$PG_URL" >"$dir/pg.url"
        "$PY" - "$dir/weft.toml" "$dir/pg.url" "$1" <<'PY'
import re, sys
path, url, n = sys.argv[1:]
text = open(path).read()
text = re.sub(r'\[warehouse\][^\[]*', '[warehouse]\nkind = "postgres"\nurl = { file = "%s" }\n' % url, text, count=1)
text = text.replace('name = "stripe"', 'name = "stripe_weft_%s"' % n, 1)
open(path, "w").write(text)
PY
    fi
    measure "weft-$1" "$WEFT" run --config "$dir/weft.toml" --json \
        || { echo "weft failed:" >&2; tail -20 "$WORK/weft-$1.err" >&2; exit 1; }
    ROWS=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["pipelines"][0]["streams"][0]["rows"])' "$WORK/weft-$1.out")
    INNER=$("$PY" -c 'import json, sys; print("%.2f" % json.load(open(sys.argv[1]))["pipelines"][0]["seconds"])' "$WORK/weft-$1.out")
}

echo "sandbox Stripe customers: $SIZE at $BASE into $WAREHOUSE; dlt $DLT_VERSION; weft $PROFILE; $ROUNDS rounds"
printf '%-6s %-5s %9s %9s %12s %12s %12s\n' round tool rows seconds records/s inner_s peak_rss_MiB
declare -a DLT_RATES WEFT_RATES DLT_RSS WEFT_RSS
for round in $(seq "$ROUNDS"); do
    for tool in dlt weft; do
        "run_$tool" "$round"
        if [[ $ROWS != "$SIZE" ]]; then
            echo "$tool loaded $ROWS rows, expected $SIZE" >&2
            exit 1
        fi
        rate=$(awk -v r="$ROWS" -v s="$SECONDS_TAKEN" 'BEGIN { printf "%.0f", r / s }')
        rss=$(awk -v k="$PEAK_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
        printf '%-6s %-5s %9s %9s %12s %12s %12s\n' "$round" "$tool" "$ROWS" "$SECONDS_TAKEN" "$rate" "$INNER" "$rss"
        if [[ $tool == dlt ]]; then
            DLT_RATES+=("$rate"); DLT_RSS+=("$rss")
        else
            WEFT_RATES+=("$rate"); WEFT_RSS+=("$rss")
        fi
    done
done

mean() { printf '%s\n' "$@" | awk '{ s += $1; n++ } END { printf "%.0f", s / n }'; }
max() { printf '%s\n' "$@" | awk 'NR == 1 || $1 > m { m = $1 } END { printf "%.1f", m }'; }
dlt_mean=$(mean "${DLT_RATES[@]}")
weft_mean=$(mean "${WEFT_RATES[@]}")
echo "dlt:  $dlt_mean records/s (mean), peak RSS $(max "${DLT_RSS[@]}") MiB (max)"
echo "weft: $weft_mean records/s (mean), peak RSS $(max "${WEFT_RSS[@]}") MiB (max)"
TARGET=30
[[ $WAREHOUSE == postgres ]] && TARGET=10
awk -v w="$weft_mean" -v d="$dlt_mean" -v t="$TARGET" 'BEGIN { printf "ratio weft/dlt: %.1fx (target >= %dx)\n", w / d, t }'
