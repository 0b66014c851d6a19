"""Queries the analytics service over Arrow Flight SQL with the ADBC driver (as a user's
notebook would) and prints, as JSON, what it got back — answers and errors — for the e2e
test to check.

usage: flight_sql.py grpc://HOST:PORT TOKEN OTHER_TOKEN
  TOKEN: a user with analytics.query; OTHER_TOKEN: one without.
"""
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions

uri, token, other = sys.argv[1], sys.argv[2], sys.argv[3]


def connect(t):
    return flight_sql.connect(
        uri, db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {t}"}
    )


def attempt(conn, sql):
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            table = cur.fetch_arrow_table()
            return {"ok": table.to_pylist(), "columns": table.column_names}
    except Exception as e:  # the driver's errors carry the server's gRPC status text
        return {"error": str(e)}


out = {}
with connect(token) as conn:
    out["outcomes"] = attempt(
        conn,
        "SELECT outcome, count(*) AS n FROM promotions GROUP BY outcome ORDER BY outcome",
    )
    out["kpi"] = attempt(conn, "SELECT completed, succeeded, failed FROM kpi_promotion_success_rate")
    out["events"] = attempt(conn, "SELECT count(*) AS n, max(position) AS last FROM events")
    # event_type is dictionary-encoded in the service; a Flight SQL client gets strings.
    out["by_type"] = attempt(
        conn,
        "SELECT event_type, count(*) AS n FROM events GROUP BY event_type ORDER BY event_type",
    )
    with conn.cursor() as cur:
        cur.execute("SELECT event_type, actor FROM events LIMIT 3")
        out["by_type_schema"] = [str(f.type) for f in cur.fetch_arrow_table().schema]
    out["drop"] = attempt(conn, "DROP TABLE events")
    out["insert"] = attempt(conn, "INSERT INTO events SELECT * FROM events")
    out["bad"] = attempt(conn, "SELECT nope FROM events")
    info = conn.adbc_get_info()
    out["vendor"] = info.get("vendor_name")
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    out["tables"] = sorted(
        t["table_name"]
        for catalog in objects
        for schema in catalog["catalog_db_schemas"] or []
        for t in schema["db_schema_tables"] or []
    )
with connect(other) as conn:
    out["denied"] = attempt(conn, "SELECT 1")
with connect("not-a-token") as conn:
    out["unauthenticated"] = attempt(conn, "SELECT 1")
print(json.dumps(out, default=str))
