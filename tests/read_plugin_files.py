#!/usr/bin/env python3
"""Reads the data files of a plugin export with independent readers, for tests/e2e/plugins.rs.

    read_plugin_files.py csv FILE.csv.gz...     Python's csv module (RFC 4180 dialect)
    read_plugin_files.py parquet FILE.parquet... pyarrow

Prints one JSON document: {"files": [{"path", "columns": [names], "types": [arrow types, parquet
only], "rows": [[values]]}]}. A CSV file's first record is its header. Values are what the
reader gives: strings for CSV; for Parquet, Python values (int, float, bool, str, None).
Exits 1 with a message on anything it cannot read.
"""

import csv
import gzip
import io
import json
import sys


def read_csv(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    # newline="" keeps quoted line breaks intact, as the csv module asks.
    text = io.StringIO(raw.decode("utf-8"), newline="")
    records = list(csv.reader(text, strict=True))
    if not records:
        raise ValueError(f"{path}: no header")
    # RFC 4180 ends every record with CRLF; check the raw bytes, since the reader accepts both.
    if not raw.endswith(b"\r\n"):
        raise ValueError(f"{path}: the last record does not end with CRLF")
    return {"path": path, "columns": records[0], "rows": records[1:]}


def read_parquet(path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {
        "path": path,
        "columns": table.column_names,
        "types": [str(field.type) for field in table.schema],
        "rows": [list(row.values()) for row in table.to_pylist()],
    }


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("csv", "parquet"):
        sys.exit(__doc__)
    reader = read_csv if sys.argv[1] == "csv" else read_parquet
    try:
        files = [reader(path) for path in sys.argv[2:]]
    except Exception as error:  # noqa: BLE001 - any failure to read is the test's finding
        sys.exit(f"read_plugin_files.py: {error}")
    json.dump({"files": files}, sys.stdout)


if __name__ == "__main__":
    main()
