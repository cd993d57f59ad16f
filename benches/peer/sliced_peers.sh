#!/usr/bin/env bash
# Issue 15's peer benchmark in one run: weft (sliced, `weft run` into
# DuckDB), dlt `rest_api` (into DuckDB via Parquet) and Singer `tap-stripe`
# (Singer messages to a file, no target) read the same Stripe customers from
# ONE sandbox process that answers every request after LATENCY_MS and allows
# RATE requests/s (Stripe's documented live limit: 100). weft's budget is the
# same RATE; dlt and tap-stripe page one request at a time, as they do.
#
#   benches/peer/sliced_peers.sh [SIZE=100000] [LATENCY_MS=200] [RATE=100]
#
# Prints one row per tool: rows (unique ids), wall seconds of the whole
# process, requests the sandbox received during it, achieved rate against
# RATE, 429s, peak in flight, busiest second (sandbox log), CPU seconds
# (user + sys of the tool's process tree, sandbox excluded) and CPU s per
# 100k; then weft's speed-up over the best peer (target >= 15x).
#
# tap-stripe runs through benches/peer/tap_stripe_sandbox.py: the unmodified
# tap is tried first (the sandbox now serves the account it checks), and only
# if its discovery fails, with `--account-shim` (see that file).
#
# Env: WEFT_PEER_VENV (dlt, default /root/.cache/weft/peer-venv),
# TAP_VENV (default /root/.cache/weft/tap-stripe-venv; created with
# `pip install tap-stripe` if missing), CARGO_TARGET_DIR (default
# /root/.cache/weft/target), KEEP=1 keeps the run directory, TOOLS (default
# "weft dlt tap") to run a subset.
set -euo pipefail

SIZE=${1:-100000}
LATENCY_MS=${2:-200}
RATE=${3:-100}
TOOLS=${TOOLS:-weft dlt tap}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/weft/target}
VENV=${WEFT_PEER_VENV:-/root/.cache/weft/peer-venv}
TAP_VENV=${TAP_VENV:-/root/.cache/weft/tap-stripe-venv}
KEY=sk_test_weft_sandbox # weft_sandbox::DEFAULT_STRIPE_KEY

# shellcheck source=../weft.sh
source "$ROOT/benches/weft.sh"
build_weft release

if ! "$VENV/bin/python" -c 'import dlt, duckdb, pyarrow' 2>/dev/null; then
    echo "creating $VENV with dlt[duckdb,parquet] ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q 'dlt[duckdb,parquet]'
fi
if ! "$TAP_VENV/bin/python" -c 'import tap_stripe' 2>/dev/null; then
    echo "creating $TAP_VENV with tap-stripe ..." >&2
    python3 -m venv "$TAP_VENV"
    "$TAP_VENV/bin/pip" install -q --upgrade pip
    "$TAP_VENV/bin/pip" install -q tap-stripe
fi
PY="$VENV/bin/python"
DLT_VERSION=$("$PY" -c 'import dlt; print(dlt.__version__)')
TAP_VERSION=$("$TAP_VENV/bin/pip" show tap-stripe 2>/dev/null | awk '/^Version/ { print $2 }')

WORK=$(mktemp -d /tmp/weft-sliced-peers.XXXXXX)
SANDBOX_PID=
cleanup() {
    if [[ -n $SANDBOX_PID ]]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- one sandbox process, latency and rate limit set through /__sandbox/ -----
start_sandbox "$SIZE" "$WORK/sandbox.out"
curl -sf -X POST -H 'content-type: application/json' \
    -d "{\"latency_ms\": $LATENCY_MS}" "$BASE/__sandbox/faults?api=stripe" >/dev/null
curl -sf -X POST -H 'content-type: application/json' \
    -d "{\"per_sec\": $RATE}" "$BASE/__sandbox/rate_limits?api=stripe" >/dev/null

# sandbox_log FILE: the sandbox's Stripe request log (JSON) into FILE.
sandbox_log() { curl -sf "$BASE/__sandbox/requests?api=stripe" >"$1"; }
# log_stats BEFORE AFTER: "REQUESTS BUSIEST_SECOND" of the requests AFTER
# holds beyond BEFORE.
log_stats() {
    "$PY" - "$1" "$2" <<'PY'
import json, sys
before = json.load(open(sys.argv[1]))["count"]
reqs = json.load(open(sys.argv[2]))["requests"][before:]
at = sorted(r["at_ms"] for r in reqs)
best, lo = 0, 0
for hi in range(len(at)):
    while at[hi] - at[lo] >= 1000:
        lo += 1
    best = max(best, hi - lo + 1)
print(len(reqs), best)
PY
}

# measure NAME CMD...: runs CMD (stdout to $WORK/NAME.out); sets
# SECONDS_TAKEN, CPU_S (user + sys) and SANDBOX_REQUESTS, BUSIEST.
measure() {
    local name=$1
    shift
    sandbox_log "$WORK/$name.before.json"
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    end=$(date +%s.%N)
    SECONDS_TAKEN=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    CPU_S=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/$name.time")
    sandbox_log "$WORK/$name.after.json"
    read -r SANDBOX_REQUESTS BUSIEST < <(log_stats "$WORK/$name.before.json" "$WORK/$name.after.json")
}

row() { # TOOL ROWS 429S IN_FLIGHT
    local rate
    rate=$(awk -v n="$SANDBOX_REQUESTS" -v s="$SECONDS_TAKEN" -v r="$RATE" \
        'BEGIN { printf "%.1f/s (%.2f)", n / s, n / s / r }')
    printf '%-22s %8s %9s %9s %16s %6s %8s %8s %7s %10s\n' "$1" "$2" "$SECONDS_TAKEN" \
        "$SANDBOX_REQUESTS" "$rate" "$3" "$4" "$BUSIEST" "$CPU_S" \
        "$(awk -v c="$CPU_S" -v n="$2" 'BEGIN { printf "%.2f", c * 100000 / (n > 0 ? n : 1) }')"
}

echo "sandbox Stripe customers: $SIZE, ${LATENCY_MS} ms per request, limit $RATE/s; weft release, dlt $DLT_VERSION, tap-stripe $TAP_VERSION"
declare -A SECS
printf '%-22s %8s %9s %9s %16s %6s %8s %8s %7s %10s\n' \
    tool rows seconds requests "rate (x budget)" 429s in_flight busiest cpu_s cpu_s/100k

# --- weft: the Stripe pipeline, sliced, budget RATE, into DuckDB --------------
if [[ " $TOOLS " == *" weft "* ]]; then
    dir="$WORK/weft"
    mkdir -p "$dir"
    write_config "$dir"
    sed -i "s/^requests_per_second = .*/requests_per_second = $RATE/" "$dir/weft.toml"
    measure weft "$WEFT" run --config "$dir/weft.toml" --json \
        || { echo "weft failed:" >&2; tail -20 "$WORK/weft.err" >&2; exit 1; }
    read -r rows limited peak < <("$PY" -c 'import json, sys
s = json.load(open(sys.argv[1]))["pipelines"][0]["streams"][0]
print(s["rows"], s["rate_limited"], (s.get("slices") or {}).get("peak_in_flight", "-"))' "$WORK/weft.out")
    row "weft (sliced)" "$rows" "$limited" "$peak"
    SECS[weft]=$SECONDS_TAKEN
fi

# --- dlt rest_api: cursor pages one at a time, into DuckDB ---------------------
if [[ " $TOOLS " == *" dlt "* ]]; then
    mkdir -p "$WORK/dlt"
    measure dlt "$PY" "$ROOT/benches/peer/dlt_stripe.py" --base-url "$BASE" --api-key "$KEY" --dir "$WORK/dlt" \
        || { echo "dlt failed:" >&2; tail -20 "$WORK/dlt.err" >&2; exit 1; }
    rows=$(sed -n 's/^dlt rows=\([0-9]*\).*/\1/p' "$WORK/dlt.out")
    row "dlt rest_api" "$rows" - 1
    SECS[dlt]=$SECONDS_TAKEN
fi

# --- Singer tap-stripe: customers only, Singer messages to a file -------------
if [[ " $TOOLS " == *" tap "* ]]; then
    TAP_PY="$TAP_VENV/bin/python"
    TAP="$ROOT/benches/peer/tap_stripe_sandbox.py"
    # The sandbox's customers span the 730 days before its clock.
    START=$(date -u -d "@$(($(date +%s) - 731 * 86400))" +%Y-%m-%dT00:00:00Z)
    printf '{"client_secret": "%s", "account_id": "", "start_date": "%s"}\n' "$KEY" "$START" >"$WORK/tap.config.json"
    export HTTP_PROXY=$BASE http_proxy=$BASE
    unset NO_PROXY no_proxy HTTPS_PROXY https_proxy
    SHIM=
    TAP_LABEL="tap-stripe"
    if "$TAP_PY" "$TAP" -- --config "$WORK/tap.config.json" --discover >"$WORK/tap.catalog.json" 2>"$WORK/tap.plain.err"; then
        echo "tap-stripe unmodified: discovery passed (the row is the unmodified tap)"
    else
        SHIM=--account-shim
        TAP_LABEL="tap-stripe (shim)"
        echo "tap-stripe unmodified fails its account check: $(grep -E '^[A-Za-z]+Error' "$WORK/tap.plain.err" | tail -1)"
        "$TAP_PY" "$TAP" --account-shim -- --config "$WORK/tap.config.json" --discover >"$WORK/tap.catalog.json" 2>"$WORK/tap.discover.err" \
            || { echo "tap-stripe discovery failed:" >&2; tail -20 "$WORK/tap.discover.err" >&2; exit 1; }
    fi
    "$PY" - "$WORK/tap.catalog.json" "$WORK/tap.selected.json" <<'PY'
import json, sys
catalog = json.load(open(sys.argv[1]))
streams = [s for s in catalog["streams"] if s["tap_stream_id"] == "customers"]
for m in streams[0]["metadata"]:
    if m["breadcrumb"] == []:
        m["metadata"]["selected"] = True
json.dump({"streams": streams}, open(sys.argv[2], "w"))
PY
    measure tap "$TAP_PY" "$TAP" $SHIM -- --config "$WORK/tap.config.json" --catalog "$WORK/tap.selected.json" \
        || { echo "tap-stripe failed:" >&2; tail -20 "$WORK/tap.err" >&2; exit 1; }
    unset HTTP_PROXY http_proxy
    read -r rows records < <("$PY" -c 'import json, sys
ids, n = set(), 0
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("type") == "RECORD":
        n += 1
        ids.add(m["record"]["id"])
print(len(ids), n)' "$WORK/tap.out")
    limited=$(grep -c 'response_code=429' "$WORK/tap.err" || true)
    row "$TAP_LABEL" "$rows" "$limited" 1
    echo "  (tap-stripe wrote $records RECORD messages: customers plus the updates it reads from /v1/events)"
    SECS[tap]=$SECONDS_TAKEN
fi

if [[ -n ${SECS[weft]:-} ]] && { [[ -n ${SECS[dlt]:-} ]] || [[ -n ${SECS[tap]:-} ]]; }; then
    best=$(printf '%s\n' "${SECS[dlt]:-}" "${SECS[tap]:-}" | awk 'NF && (m == "" || $1 < m) { m = $1 } END { print m }')
    awk -v b="$best" -v w="${SECS[weft]}" 'BEGIN { printf "weft vs the best peer: %.1fx faster (%.2f s vs %.2f s; target >= 15x)\n", b / w, w, b }'
fi
