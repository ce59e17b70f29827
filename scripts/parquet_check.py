#!/usr/bin/env python3
"""Check a Parquet file of the tool's against the JSON lines it was made from.

    python3 scripts/parquet_check.py FILE.parquet FILE.jsonl

Reads FILE.parquet with pyarrow, pandas, DuckDB and polars (pip install
pyarrow pandas duckdb polars) and compares every value of every column, by its name, with
the JSON lines: decimals as decimal.Decimal (equal in value: 651.1 ==
651.10000000), timestamps as ms since the epoch, integers and strings as
they are, null as None. Each reader must also give each column its exact
type: DECIMAL(18,8) prices, DECIMAL(38,8) volume and turnover, UTC
timestamps in ms, an unsigned 64-bit seq, a signed 64-bit trades, strings.

The rows are the lines of one kind: trade lines, or bar and K-line lines
(which kind, the columns say; when every column is of both, the first
line's). Other lines (gap, depth, blank) are passed over, as the writer
refuses them. Exit 0 when all three readers agree with the lines; else the
first difference is printed and the exit is 1 (2 for bad arguments or a
reader missing).
"""

import decimal
import json
import sys

TRADE_KEYS = ["type", "symbol", "code", "seq", "time", "price", "volume", "turnover", "side"]
BAR_KEYS = ["type", "symbol", "code", "interval", "start", "end", "open", "high", "low",
            "close", "volume", "turnover", "trades"]
PRICES = {"price", "open", "high", "low", "close"}
AMOUNTS = {"volume", "turnover"}
TIMES = {"time", "start", "end"}
TEXTS = {"type", "symbol", "code", "side", "interval"}

# The exact type each reader must give a column, by what the column holds.
TYPES = {
    "pyarrow": {"price": "decimal128(18, 8)", "amount": "decimal128(38, 8)",
                "time": "timestamp[ms, tz=UTC]", "seq": "uint64", "trades": "int64",
                "text": "string"},
    "duckdb": {"price": "DECIMAL(18,8)", "amount": "DECIMAL(38,8)",
               "time": "TIMESTAMP WITH TIME ZONE", "seq": "UBIGINT", "trades": "BIGINT",
               "text": "VARCHAR"},
    # pandas (through pyarrow): decimals as Python decimals in object
    # columns, times as datetime64 in UTC, seq as uint64, strings as objects.
    "pandas": {"price": "object", "amount": "object", "time": "datetime64[ms, UTC]",
               "seq": "uint64", "trades": "Int64", "text": "object"},
    "polars": {"price": "Decimal(precision=18, scale=8)",
               "amount": "Decimal(precision=38, scale=8)",
               "time": "Datetime(time_unit='ms', time_zone='UTC')", "seq": "UInt64",
               "trades": "Int64", "text": "String"},
}


class Differ(Exception):
    """The first difference found."""


def holds(name):
    """What column `name` holds: a key of TYPES' tables."""
    if name in PRICES:
        return "price"
    if name in AMOUNTS:
        return "amount"
    if name in TIMES:
        return "time"
    if name in TEXTS:
        return "text"
    return name  # seq, trades


def rows_of(jsonl, names):
    """The lines that are rows of a file of columns `names`, parsed."""
    if any(n in names and n not in BAR_KEYS for n in TRADE_KEYS):
        kinds = {"trade"}
    elif any(n in names and n not in TRADE_KEYS for n in BAR_KEYS):
        kinds = {"bar", "kline"}
    else:
        kinds = None
    rows = []
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line, parse_float=decimal.Decimal)
            kind = obj.get("type") if isinstance(obj, dict) else None
            if kind not in ("trade", "bar", "kline"):
                continue
            if kinds is None:
                kinds = {"trade"} if kind == "trade" else {"bar", "kline"}
            if kind in kinds:
                rows.append(obj)
    return rows


def same(name, got, want):
    """Whether a value read equals the line's."""
    if want is None or got is None:
        return got is None and want is None
    if name in PRICES or name in AMOUNTS:
        return isinstance(got, decimal.Decimal) and got == decimal.Decimal(want)
    return type(got) is type(want) and got == want


def compare(reader, names, types, columns, rows):
    """Compare one reader's types and columns (name -> list) with the rows."""
    for name in names:
        want_type = TYPES[reader][holds(name)]
        if types[name] != want_type:
            raise Differ(f"{reader}: column {name} is {types[name]}, not {want_type}")
        got = columns[name]
        if len(got) != len(rows):
            raise Differ(f"{reader}: {len(got)} rows, the lines have {len(rows)}")
        for i, (g, row) in enumerate(zip(got, rows)):
            if not same(name, g, row.get(name)):
                raise Differ(f"{reader}: row {i + 1}, column {name}: "
                             f"Parquet has {g!r}, the line has {row.get(name)!r}")


def by_pyarrow(path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    with open(path, "rb") as f:  # a path, never a URI
        table = pq.read_table(f)
    types, columns = {}, {}
    for field, col in zip(table.schema, table.columns):
        t = field.type
        types[field.name] = "timestamp[ms, tz=UTC]" if t == pa.timestamp("ms", "UTC") else str(t)
        if pa.types.is_timestamp(t):
            col = col.cast(pa.int64())
        columns[field.name] = col.to_pylist()
    return types, columns


def by_pandas(path):
    import pandas as pd
    df = pd.read_parquet(path, engine="pyarrow")
    types, columns = {}, {}
    for name in df.columns:
        col = df[name]
        t = str(col.dtype)
        if t in ("str", "string"):  # pandas 3's strings
            t = "object"
        if t.startswith("datetime64"):
            types[name] = t.replace("ns,", "ms,") if "[ms" not in t else t
            values = [None if pd.isna(v) else int(v.value // 1_000_000) for v in col]
        elif t == "float64" and name == "trades":
            # A column of integers with nulls, as pandas gives it by default.
            types[name] = "Int64"
            values = [None if pd.isna(v) else int(v) for v in col]
        else:
            types[name] = "Int64" if t == "int64" and name == "trades" else t
            values = [None if (v is None or (isinstance(v, float) and pd.isna(v))) else
                      (int(v) if t in ("uint64", "int64") else v) for v in col]
        columns[name] = values
    return types, columns


def by_duckdb(path):
    import duckdb
    con = duckdb.connect()
    rel = con.read_parquet(path)
    types = {n: str(t) for n, t in zip(rel.columns, rel.types)}
    select = ", ".join(
        f'epoch_ms("{n}") AS "{n}"' if t.startswith("TIMESTAMP") else f'"{n}"'
        for n, t in types.items())
    values = con.sql(f"SELECT {select} FROM read_parquet(?)", params=[path]).fetchall()
    return types, {n: [v[i] for v in values] for i, n in enumerate(types)}


def by_polars(path):
    import polars as pl
    with open(path, "rb") as f:
        df = pl.read_parquet(f)
    types, columns = {}, {}
    for name, t in df.schema.items():
        types[name] = repr(t) if isinstance(t, (pl.Decimal, pl.Datetime)) else str(t)
        col = df[name]
        if isinstance(t, pl.Datetime):
            col = col.dt.epoch("ms")
        columns[name] = col.to_list()
    return types, columns


def main(argv):
    if len(argv) != 3:
        print("usage: " + __doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path, jsonl = argv[1], argv[2]
    readers = {"pyarrow": by_pyarrow, "pandas": by_pandas, "duckdb": by_duckdb,
               "polars": by_polars}
    read = {}
    for reader, by in readers.items():
        try:
            read[reader] = by(path)
        except ImportError as e:
            print(f"parquet_check: {reader} is not installed ({e}): pip install {reader}",
                  file=sys.stderr)
            return 2
    names = list(read["pyarrow"][0])
    rows = rows_of(jsonl, names)
    try:
        for reader, (types, columns) in read.items():
            if list(types) != names:
                raise Differ(f"{reader}: columns {list(types)}, pyarrow's {names}")
            compare(reader, names, types, columns, rows)
    except Differ as d:
        print(f"parquet_check: {path}: {d}")
        return 1
    print(f"parquet_check: {path}: {len(rows)} rows, {len(names)} columns, "
          f"as the lines have them, in pyarrow, pandas, DuckDB and polars")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
