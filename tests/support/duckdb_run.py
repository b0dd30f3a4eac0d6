"""Runs rendered DuckDB jobs over canonical tables; prints memberships as JSON.

Usage: duckdb_run.py DATA_DIR SQL_DIR NOW
DATA_DIR holds <schema>.jsonl, tables.json (schema -> column -> type) and
audiences.json (entity -> audience columns);
SQL_DIR holds audiences.sql, person_audiences.sql, exports/*.sql and
exports/*.consent.sql.
Output: {"accounts": {column: [keys]}, "people": {...}, "exports": {name: rows},
"consent": {name: {audience: rows consent removed}}}.
"""
import json
import os
import sys

import duckdb

data, sql_dir, now = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
types = json.load(open(os.path.join(data, "tables.json")))
for table, cols in types.items():
    col_defs = ", ".join(f'"{c}" {t}' for c, t in cols.items())
    con.execute(f'CREATE TABLE "{table}" ({col_defs})')
    path = os.path.join(data, f"{table}.jsonl")
    if os.path.getsize(path) == 0:
        continue
    spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in cols.items()) + "}"
    names = ", ".join(f'"{c}"' for c in cols)
    con.execute(
        f"INSERT INTO \"{table}\" SELECT {names} FROM read_json('{path}', format='newline_delimited', columns={spec})"
    )


def job(name):
    with open(os.path.join(sql_dir, name)) as f:
        return f.read().replace("@ACCORD_NOW@", now)


audience_columns = json.load(open(os.path.join(data, "audiences.json")))


def members(table, key):
    out = {}
    for c in audience_columns["account" if table == "accord_accounts" else "person"]:
        rows = con.execute(f'SELECT {key} FROM {table} WHERE "{c}" ORDER BY 1').fetchall()
        out[c] = [r[0] for r in rows]
    return out


result = {"accounts": {}, "people": {}, "exports": {}, "consent": {}}
con.execute("CREATE TABLE accord_accounts AS " + job("audiences.sql"))
result["accounts"] = members("accord_accounts", "__account_key")
if os.path.exists(os.path.join(sql_dir, "person_audiences.sql")):
    con.execute("CREATE TABLE accord_people AS " + job("person_audiences.sql"))
    result["people"] = members("accord_people", "__person_key")
exports = os.path.join(sql_dir, "exports")
for name in sorted(os.listdir(exports)) if os.path.isdir(exports) else []:
    cur = con.execute(job(os.path.join("exports", name)))
    if name.endswith(".consent.sql"):
        counts = {audience: n for audience, n in cur.fetchall()}
        result["consent"][name[: -len(".consent.sql")]] = counts
        continue
    cols = [d[0] for d in cur.description]
    rows = []
    for row in cur.fetchall():
        r = dict(zip(cols, row))
        mapped = [v for c, v in zip(cols, row) if not c.startswith("__")]
        rows.append([r["__audience"], r.get("__account_key"), r.get("__person_key")] + mapped)
    result["exports"][name[: -len(".sql")]] = rows
print(json.dumps(result, sort_keys=True, default=str))
