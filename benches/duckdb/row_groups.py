"""How DuckDB's row group size and checkpoint threshold change the time and
peak memory of loading 1M rows in 20k-row transactions (the shape of weft's
loads: a TEMP staging table, then INSERT INTO the target, one transaction
per load). Needs the Python `duckdb` package at the version weft bundles
(1.2.0).

    python3 benches/duckdb/row_groups.py default 1000000
    python3 benches/duckdb/row_groups.py rg32768 1000000     # ATTACH (ROW_GROUP_SIZE 32768)
    python3 benches/duckdb/row_groups.py ck1GB 1000000       # SET checkpoint_threshold='1GB'
    ML=16MB python3 benches/duckdb/row_groups.py rg32768 1000000

Prints seconds (CHECKPOINT included) and VmRSS / RssAnon / VmHWM.
"""
import os
import sys
import tempfile
import time

import duckdb

mode, n = sys.argv[1], int(sys.argv[2])
path = os.path.join(tempfile.mkdtemp(), "t.duckdb")
if mode.startswith("rg"):
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{path}' AS w (ROW_GROUP_SIZE {int(mode[2:])})")
    con.execute("USE w")
else:
    con = duckdb.connect(path)
    if mode.startswith("ck"):
        con.execute(f"SET checkpoint_threshold='{mode[2:]}'")
con.execute("SET threads=1")
con.execute(f"SET memory_limit='{os.environ.get('ML', '64MB')}'")
con.execute(
    "CREATE TABLE c (id VARCHAR, email VARCHAR, name VARCHAR, descr VARCHAR, address VARCHAR, "
    "meta VARCHAR, created BIGINT, balance BIGINT, phone VARCHAR, cur VARCHAR)"
)


def memory():
    with open("/proc/self/status") as f:
        d = dict(line.split(":", 1) for line in f)
    return {k: d[k].strip() for k in ("VmRSS", "RssAnon", "VmHWM")}


start = time.time()
chunk = 20000
for s in range(0, n, chunk):
    con.execute(
        "CREATE TEMP TABLE s AS SELECT 'cus_'||i::VARCHAR AS id, "
        "'user'||i::VARCHAR||'@example.com' AS email, 'Name '||i::VARCHAR AS name, "
        "repeat('lorem ipsum ', 20)||i::VARCHAR AS descr, "
        "'{\"line1\": \"'||i::VARCHAR||' Main St\", \"city\": \"Town\"}' AS address, "
        "'{\"k\": \"v'||(i%100)::VARCHAR||'\"}' AS meta, 1700000000+i AS created, "
        "i*7 AS balance, '+1555'||i::VARCHAR AS phone, 'usd' AS cur FROM range(?, ?) t(i)",
        [s, s + chunk],
    )
    con.execute("BEGIN")
    con.execute("INSERT INTO c SELECT * FROM s")
    con.execute("COMMIT")
    con.execute("DROP TABLE s")
con.execute("CHECKPOINT")
print(mode, n, f"seconds={time.time() - start:.2f}", memory())
