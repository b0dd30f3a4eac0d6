"""Parses rendered SQL with sqlglot in the dialect of its folder.

Usage: sqlglot_parse.py JOBS_DIR DIALECT...
Prints one line per file that does not parse and exits 1 if any; else
prints how many files parsed per dialect.
"""
import glob
import os
import sys

import sqlglot

jobs, dialects = sys.argv[1], sys.argv[2:]
failed = 0
for dialect in dialects:
    files = sorted(glob.glob(os.path.join(jobs, "sql", dialect, "**", "*.sql"), recursive=True))
    if not files:
        print(f"{dialect}: no SQL rendered")
        failed += 1
    for path in files:
        try:
            trees = sqlglot.parse(open(path).read(), read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
            if len([t for t in trees if t is not None]) != 1:
                raise ValueError(f"expected one statement, got {len(trees)}")
        except Exception as e:  # noqa: BLE001 - any parse failure is reported
            failed += 1
            print(f"{os.path.relpath(path, jobs)}: {str(e)[:500]}")
    print(f"{dialect}: {len(files)} files")
sys.exit(1 if failed else 0)
