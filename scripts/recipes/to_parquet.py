#!/usr/bin/env python3
"""Convert alltick-stream JSON lines to Parquet or CSV with DuckDB.

    pip install duckdb
    python3 scripts/recipes/to_parquet.py ticks.parquet 'ticks-*.jsonl'
    python3 scripts/recipes/to_parquet.py ticks.csv ticks-2026-01-05.jsonl

The output format follows the output file's extension (.parquet or .csv).
Inputs are files or glob patterns (quote them so DuckDB, not the shell,
expands them). Columns are typed at read time, so prices, volumes and
turnovers are read from their JSON text exactly as DECIMALs instead of
being guessed as DOUBLE; `ts` is `time` as a UTC timestamp. Values with
more decimals than the scale below are rounded: widen it for instruments
quoted finer than 6 decimals.
"""

import sys

COLUMNS = {
    "type": "VARCHAR",
    "symbol": "VARCHAR",
    "code": "VARCHAR",
    "seq": "UBIGINT",
    "time": "BIGINT",
    "price": "DECIMAL(18,6)",
    "volume": "DECIMAL(24,6)",
    "turnover": "DECIMAL(24,6)",
    "side": "VARCHAR",
}


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def convert(out: str, inputs: list[str]) -> int:
    import duckdb

    if out.endswith(".parquet"):
        fmt = "(FORMAT parquet)"
    elif out.endswith(".csv"):
        fmt = "(FORMAT csv, HEADER)"
    else:
        raise SystemExit(f"to_parquet.py: {out}: the output must end in .parquet or .csv")
    files = "[" + ", ".join(sql_string(p) for p in inputs) + "]"
    columns = "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in COLUMNS.items()) + "}"
    query = (
        f"COPY (SELECT *, epoch_ms(time) AS ts "
        f"FROM read_json({files}, format = 'newline_delimited', columns = {columns})) "
        f"TO {sql_string(out)} {fmt}"
    )
    # COPY answers with the number of rows written.
    return duckdb.connect().execute(query).fetchone()[0]


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    rows = convert(argv[1], argv[2:])
    print(f"to_parquet.py: wrote {rows} trades to {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
