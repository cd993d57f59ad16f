"""DuckDB's own cost of ingesting weft's staged Parquet: a floor under any
loader that ends in a DuckDB file, weft included.

Reads every `*.parquet` under STAGE (one file per weft load, oldest first)
into a fresh DuckDB file attached with weft's settings (ROW_GROUP_SIZE 32768,
one thread, memory_limit 32MB unless SETS says otherwise), one transaction
per file, then CHECKPOINTs. Needs the Python `duckdb` package at the version
weft bundles (1.2.0).

    python3 benches/duckdb/floor.py STAGE append   # INSERT ... FROM read_parquet
    python3 benches/duckdb/floor.py STAGE merge    # weft's merge shape: TEMP stage, delete, insert winners
    SETS="SET threads=1; SET checkpoint_threshold='1GB'" python3 benches/duckdb/floor.py STAGE append

Prints rows, wall seconds and this process's CPU seconds.
"""
import glob
import os
import sys
import tempfile
import time

import duckdb

stage, mode = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(os.path.join(stage, "**", "*.parquet"), recursive=True))
if not files:
    sys.exit(f"no Parquet files under {stage}")
path = os.path.join(tempfile.mkdtemp(), "floor.duckdb")
con = duckdb.connect()
con.execute(f"ATTACH '{path}' AS w (ROW_GROUP_SIZE 32768)")
con.execute("USE w")
con.execute(os.environ.get("SETS", "SET threads=1; SET memory_limit='32MB'"))
wall, cpu = time.time(), time.process_time()
con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{files[0]}') LIMIT 0")
for f in files:
    con.execute("BEGIN")
    if mode == "append":
        con.execute(f"INSERT INTO t SELECT * FROM read_parquet('{f}')")
    elif mode == "merge":
        con.execute(
            "CREATE OR REPLACE TEMP TABLE s AS "
            f"SELECT *, row_number() OVER () AS seq FROM read_parquet('{f}')"
        )
        con.execute(
            "DELETE FROM t WHERE EXISTS (SELECT 1 FROM "
            "(SELECT id, max(created) AS c FROM s GROUP BY id) AS k "
            "WHERE k.id = t.id AND NOT EXISTS "
            "(SELECT 1 FROM t AS o WHERE o.id = k.id AND o.created > k.c))"
        )
        con.execute(
            "INSERT INTO t SELECT * EXCLUDE (seq) FROM s WHERE seq IN (SELECT seq FROM s "
            "QUALIFY row_number() OVER (PARTITION BY id ORDER BY created DESC NULLS LAST, seq DESC) = 1)"
        )
    else:
        sys.exit(f"unknown mode {mode} (append or merge)")
    con.execute("COMMIT")
con.execute("CHECKPOINT")
rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
print(
    f"mode={mode} files={len(files)} rows={rows} "
    f"wall_s={time.time() - wall:.2f} cpu_s={time.process_time() - cpu:.2f}"
)
