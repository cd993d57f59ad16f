# Shared by the shell benches (sourced, not run): build `weft`, serve the
# sandbox, write the bench's Stripe-customers config.
#
# Needs ROOT (the repository) and CARGO_TARGET_DIR set by the caller.

# build_weft PROFILE: builds the runner (release or debug); sets WEFT.
build_weft() {
    if [[ $1 == release ]]; then
        (cd "$ROOT" && cargo build --release -q -p weft-runner)
    else
        (cd "$ROOT" && cargo build -q -p weft-runner)
    fi
    WEFT="$CARGO_TARGET_DIR/$1/weft"
}

# start_sandbox SIZE OUT: serves SIZE customers (rate limits off) in its own
# process, its output in OUT; sets SANDBOX_PID and BASE (the Stripe URL).
start_sandbox() {
    "$WEFT" sandbox --port 0 --size "$1" --no-rate-limits >"$2" 2>&1 &
    SANDBOX_PID=$!
    BASE=
    for _ in $(seq 100); do
        BASE=$(awk '$1 == "stripe" { print $2 }' "$2")
        [[ -n $BASE ]] && break
        sleep 0.1
    done
    [[ -n $BASE ]] || { echo "the sandbox did not start:" >&2; cat "$2" >&2; exit 1; }
}

# write_config DIR: DIR/weft.toml loading Stripe customers from BASE into
# DIR/w.duckdb through DIR/stage, with the e2e bench's settings (10,000-row
# loads, DuckDB memory_limit 32MB); the sandbox key in DIR/key.
write_config() {
    printf '%s' sk_test_weft_sandbox >"$1/key" # weft_sandbox::DEFAULT_STRIPE_KEY
    cat >"$1/weft.toml" <<TOML
[warehouse]
kind = "duckdb"
path = "$1/w.duckdb"
memory_limit = "32MB"
[stage]
url = "$1/stage"
[[pipelines]]
name = "stripe"
connector = "stripe"
streams = ["customers"]
checkpoint_rows = 10000
[pipelines.config]
base_url = "$BASE"
api_key = { file = "$1/key" }
requests_per_second = 1000000
TOML
}
