"""The same SQL in DuckDB over the analytics Parquet export, for `loadtest analytics --duckdb`.

Our own functions are translated to DuckDB's (see `dialect`).

usage: duckdb_bench.py EXPORT_DIR RUNS THREADS < queries.json
  queries.json: [{"label": ..., "sql": ...}, ...]; views: [{"name": ..., "sql": ...}] first.
Prints JSON: {label: {"ms": median, "rows": n} | {"error": text}}.
"""
import glob
import json
import statistics
import sys
import time

import re

import duckdb


def dialect(sql):
    """Our functions as DuckDB spells them: sum_exact is sum; date_bin(width, ts, origin at the
    epoch) is time_bucket(width, ts). Anything else runs as written (or reports its error)."""
    sql = re.sub(r"\bsum_exact\(", "sum(", sql)
    sql = re.sub(r",\s*TIMESTAMP '1970-01-01T00:00:00Z'\)", ")", sql)
    return re.sub(r"\bdate_bin\(", "time_bucket(", sql)


root, runs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spec = json.load(sys.stdin)
db = duckdb.connect()
db.execute(f"SET threads = {threads}")
for table in spec["tables"]:
    if not glob.glob(f"{root}/{table}/*/*.parquet"):
        continue  # an empty table has no files; queries over it report the error
    db.execute(
        f"CREATE VIEW {table} AS SELECT * FROM read_parquet("
        f"'{root}/{table}/*/*.parquet', hive_partitioning = true, union_by_name = true)"
    )
for view in spec["views"]:
    try:
        db.execute(f"CREATE VIEW {view['name']} AS {dialect(view['sql'])}")
    except Exception:
        pass  # a view in DataFusion's dialect; the queries over it report the error
out = {}
for q in spec["queries"]:
    times, rows = [], 0
    try:
        for _ in range(runs):
            t = time.perf_counter()
            rows = len(db.execute(dialect(q["sql"])).fetchall())
            times.append((time.perf_counter() - t) * 1e3)
        out[q["label"]] = {"ms": statistics.median(times), "rows": rows}
    except Exception as e:
        out[q["label"]] = {"error": str(e).splitlines()[0][:160]}
print(json.dumps(out))
