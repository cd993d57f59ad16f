"""dlt's rest_api source against the weft sandbox's Stripe /v1/customers, into
DuckDB via Parquet (or PostgreSQL with --postgres-url): the peer side of
benches/peer/compare.sh.

    python dlt_stripe.py --base-url http://127.0.0.1:PORT --api-key sk_test_... \
        --dir /tmp/dlt-run

Prints one line: `dlt rows=N seconds=S records_per_s=R` where S is the
pipeline's own wall time (extract + normalize + load, imports excluded).
"""

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--dir", required=True, help="pipelines dir and DuckDB file go here")
    parser.add_argument("--postgres-url", help="load into this PostgreSQL database instead of DuckDB")
    parser.add_argument("--dataset", default="stripe", help="schema (dataset) name")
    args = parser.parse_args()

    # Keep dlt's state, working files and telemetry inside the run directory.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ["DLT_DATA_DIR"] = os.path.join(args.dir, "dlt-data")

    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": args.base_url,
                "auth": {"type": "bearer", "token": args.api_key},
                # Stripe lists: `starting_after` = the last id of the page,
                # stop when `has_more` is false.
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "data[-1].id",
                    "cursor_param": "starting_after",
                    "has_more_path": "has_more",
                },
            },
            "resource_defaults": {
                "primary_key": "id",
                "write_disposition": "merge",
            },
            "resources": [
                {
                    "name": "customers",
                    "endpoint": {
                        "path": "v1/customers",
                        "params": {"limit": 100},
                        "data_selector": "data",
                    },
                },
            ],
        }
    )
    if args.postgres_url:
        # dlt loads PostgreSQL with INSERT ... VALUES files (its default there).
        destination = dlt.destinations.postgres(credentials=args.postgres_url)
        file_format = None
    else:
        destination = dlt.destinations.duckdb(os.path.join(args.dir, "dlt.duckdb"))
        file_format = "parquet"
    pipeline = dlt.pipeline(
        pipeline_name="stripe_peer",
        destination=destination,
        dataset_name=args.dataset,
        pipelines_dir=os.path.join(args.dir, "pipelines"),
    )
    started = time.perf_counter()
    pipeline.run(source, loader_file_format=file_format)
    seconds = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM customers")[0][0]
    print(f"dlt rows={rows} seconds={seconds:.2f} records_per_s={rows / seconds:.0f}")


if __name__ == "__main__":
    main()
