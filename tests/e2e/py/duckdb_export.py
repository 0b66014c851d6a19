"""Reads the analytics service's Parquet export with DuckDB (as a user would) and prints,
as JSON, the figures the e2e test compares with the service's own KPI answers.

usage: duckdb_export.py EXPORT_DIR
"""
import json
import sys

import duckdb

root = sys.argv[1]
manifest = json.load(open(f"{root}/_goose/export.json"))
position = manifest["position"]
db = duckdb.connect()
for table in [
    "events",
    "promotions",
    "gate_evaluations",
    "approvals",
    "sla_windows",
]:
    db.execute(
        f"CREATE VIEW {table} AS SELECT * FROM read_parquet("
        f"'{root}/{table}/*/*.parquet', hive_partitioning = true)"
    )


def one(sql):
    cur = db.execute(sql)
    cols = [d[0] for d in cur.description]
    row = cur.fetchone()
    return None if row is None else dict(zip(cols, row))


out = {"manifest_position": position}
# Every event below the manifest's position, once; nothing twice anywhere.
out["events"] = one(
    f"SELECT count(*) FILTER (WHERE position < {position}) AS below, "
    f"count(DISTINCT position) FILTER (WHERE position < {position}) AS distinct_below, "
    "count(*) AS rows, count(DISTINCT position) AS distinct_rows, "
    "count(*) FILTER (WHERE date <> CAST(recorded_at AT TIME ZONE 'UTC' AS DATE)) AS misfiled, "
    "count(DISTINCT date) AS days FROM events"
)
out["files"] = one(
    f"SELECT count(*) AS n FROM glob('{root}/events/*/*.parquet')"
)["n"]
out["promotion_success_rate"] = one(
    "SELECT count(*) AS completed, "
    "count(*) FILTER (WHERE outcome = 'succeeded') AS succeeded, "
    "count(*) FILTER (WHERE outcome = 'failed') AS failed, "
    "(count(*) FILTER (WHERE outcome = 'succeeded'))::DOUBLE / count(*) AS success_rate "
    "FROM promotions WHERE outcome IS NOT NULL"
)
out["promotion_duration"] = one(
    "SELECT quantile_cont(duration_ms / 1000.0, 0.5) AS p50_s, "
    "quantile_cont(duration_ms / 1000.0, 0.9) AS p90_s, "
    "avg(duration_ms / 1000.0) AS mean_s, max(duration_ms / 1000.0) AS max_s "
    "FROM promotions WHERE duration_ms IS NOT NULL"
)
out["gate_failure_reasons"] = one(
    'SELECT "check", detail AS reason, count(*) AS failures, '
    "count(DISTINCT promotion_id) AS promotions FROM gate_evaluations "
    "WHERE outcome = 'fail' GROUP BY ALL ORDER BY failures DESC, \"check\", reason LIMIT 1"
)
out["approval_wait"] = one(
    "SELECT count(*) AS requests, sum(refused_attempts) AS refused_attempts "
    "FROM approvals WHERE kind = 'promotion'"
)
out["sla_attainment"] = one(
    "SELECT sum(requests) AS requests, sum(errors) AS errors, "
    "1 - sum(errors)::DOUBLE / sum(requests) AS availability "
    "FROM sla_windows WHERE service = 'service-a'"
)
print(json.dumps(out, default=str))
