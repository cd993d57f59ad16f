#!/usr/bin/env bash
# Issue 17's "a sandbox real clients accept": other tools, unmodified but
# for the base URL, extract from ONE sandbox process exactly the records
# weft extracts. Not part of `cargo test` (it needs the Python peers, which
# it installs into venvs under /root/.cache/weft on first use).
#
#   benches/peer/real_clients.sh [SIZE=300]
#
# Checks, each an id-set comparison with weft's load of the same streams
# (`weft run` into DuckDB, then `weft query`):
# - Singer tap-stripe (unmodified: no account shim; HTTP_PROXY points the
#   Stripe SDK's http://api.stripe.com at the sandbox, as in
#   tap_stripe_sandbox.py): customers, charges, invoices, subscriptions.
# - dlt `rest_api` (benches/peer/dlt_stripe.py): customers.
# Prints one line per stream and tool, `same` or `DIFFERENT` with the
# counts; exits 1 when any differs.
#
# Env: WEFT_PEER_VENV (dlt; default /root/.cache/weft/peer-venv), TAP_VENV
# (default /root/.cache/weft/tap-stripe-venv), PROFILE (debug or release,
# default debug: this checks records, not speed), KEEP=1 keeps the run dir.
set -euo pipefail

SIZE=${1:-300}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/weft/target}
VENV=${WEFT_PEER_VENV:-/root/.cache/weft/peer-venv}
TAP_VENV=${TAP_VENV:-/root/.cache/weft/tap-stripe-venv}
KEY=sk_test_weft_sandbox # weft_sandbox::DEFAULT_STRIPE_KEY
STREAMS=(customers charges invoices subscriptions)

# shellcheck source=../weft.sh
source "$ROOT/benches/weft.sh"
build_weft "${PROFILE:-debug}"

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

WORK=$(mktemp -d /tmp/weft-real-clients.XXXXXX)
SANDBOX_PID=
cleanup() {
    if [[ -n $SANDBOX_PID ]]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
start_sandbox "$SIZE" "$WORK/sandbox.out"
echo "sandbox: $SIZE people; weft ${PROFILE:-debug}, dlt $("$PY" -c 'import dlt; print(dlt.__version__)'), tap-stripe $("$TAP_VENV/bin/pip" show tap-stripe 2>/dev/null | awk '/^Version/ { print $2 }')"

# --- weft: the four streams into DuckDB, then their ids -----------------------
mkdir -p "$WORK/weft"
write_config "$WORK/weft"
sed -i "s/^streams = .*/streams = [\"customers\", \"charges\", \"invoices\", \"subscriptions\"]/" "$WORK/weft/weft.toml"
"$WEFT" run --config "$WORK/weft/weft.toml" >"$WORK/weft.out" 2>"$WORK/weft.err" \
    || { echo "weft failed:" >&2; tail -20 "$WORK/weft.err" >&2; exit 1; }
for s in "${STREAMS[@]}"; do
    "$WEFT" query --config "$WORK/weft/weft.toml" --json "SELECT id FROM stripe.$s ORDER BY id" >"$WORK/weft.$s.json"
done

# --- Singer tap-stripe, unmodified ---------------------------------------------
TAP_PY="$TAP_VENV/bin/python"
TAP="$ROOT/benches/peer/tap_stripe_sandbox.py"
START=$(date -u -d "@$(($(date +%s) - 731 * 86400))" +%Y-%m-%dT00:00:00Z)
printf '{"client_secret": "%s", "account_id": "", "start_date": "%s"}\n' "$KEY" "$START" >"$WORK/tap.config.json"
(
    export HTTP_PROXY=$BASE http_proxy=$BASE
    unset NO_PROXY no_proxy HTTPS_PROXY https_proxy
    "$TAP_PY" "$TAP" -- --config "$WORK/tap.config.json" --discover >"$WORK/tap.catalog.json" 2>"$WORK/tap.discover.err" \
        || { echo "tap-stripe (unmodified) discovery failed:" >&2; tail -5 "$WORK/tap.discover.err" >&2; exit 1; }
    "$PY" - "$WORK/tap.catalog.json" "$WORK/tap.selected.json" "${STREAMS[@]}" <<'PY'
import json, sys
catalog = json.load(open(sys.argv[1]))
wanted = set(sys.argv[3:])
for s in catalog["streams"]:
    if s["tap_stream_id"] in wanted:
        for m in s["metadata"]:
            if m["breadcrumb"] == []:
                m["metadata"]["selected"] = True
json.dump(catalog, open(sys.argv[2], "w"))
PY
    "$TAP_PY" "$TAP" -- --config "$WORK/tap.config.json" --catalog "$WORK/tap.selected.json" >"$WORK/tap.out" 2>"$WORK/tap.err" \
        || { echo "tap-stripe (unmodified) failed:" >&2; tail -5 "$WORK/tap.err" >&2; exit 1; }
)

# --- dlt rest_api: customers -----------------------------------------------------
mkdir -p "$WORK/dlt"
"$PY" "$ROOT/benches/peer/dlt_stripe.py" --base-url "$BASE" --api-key "$KEY" --dir "$WORK/dlt" >"$WORK/dlt.out" 2>"$WORK/dlt.err" \
    || { echo "dlt failed:" >&2; tail -20 "$WORK/dlt.err" >&2; exit 1; }

# --- compare -----------------------------------------------------------------------
"$PY" - "$WORK" "${STREAMS[@]}" <<'PY'
import collections, json, sys
import duckdb

work, streams = sys.argv[1], sys.argv[2:]
weft = {s: {r[0] for r in json.load(open(f"{work}/weft.{s}.json"))["rows"]} for s in streams}
tap = collections.defaultdict(set)
for line in open(f"{work}/tap.out"):
    m = json.loads(line)
    if m.get("type") == "RECORD":
        tap[m["stream"]].add(m["record"]["id"])
con = duckdb.connect(f"{work}/dlt/dlt.duckdb", read_only=True)
dlt = {"customers": {r[0] for r in con.execute("SELECT id FROM stripe.customers").fetchall()}}
bad = 0
for tool, got in [("tap-stripe", tap), ("dlt rest_api", dlt)]:
    for s in streams:
        if s not in got:
            continue
        same = got[s] == weft[s]
        bad += not same
        print(f"{tool:<13} {s:<14} weft {len(weft[s]):>6}  {tool} {len(got[s]):>6}  "
              f"{'same' if same else 'DIFFERENT'}")
sys.exit(1 if bad else 0)
PY
