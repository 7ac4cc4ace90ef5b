"""Bulk SQL for the hot paths: reserve ids, insert columns, filter by many values, fetch rows.

These go around the ORM and around SQLAlchemy's row processing on purpose: a million
annotations are written with one ``executemany`` of plain tuples on SQLite (columns that are
the same on every row are written as SQL literals, so they are not bound a million times) and
with ``COPY`` on PostgreSQL; reads use the DBAPI cursor directly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from itertools import pairwise, repeat
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from annoloop.errors import InvalidInput
from annoloop.store.schema import utcnow

# Above this many values a filter goes through json_each (SQLite) instead of placeholders.
_MAX_PLACEHOLDERS = 500


def is_sqlite(conn: Connection) -> bool:
    """True when ``conn`` talks to SQLite."""
    return conn.dialect.name == "sqlite"


def placeholder(conn: Connection) -> str:
    """The DBAPI parameter marker: ``?`` for sqlite3, ``%s`` for psycopg."""
    return "?" if is_sqlite(conn) else "%s"


def raw_cursor(conn: Connection) -> Any:
    """A DBAPI cursor on the connection's current transaction."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def timestamp_param(conn: Connection, when: dt.datetime | None = None) -> Any:
    """A UTC timestamp as the raw driver wants it (SQLAlchemy's text form on SQLite)."""
    when = (when or utcnow()).astimezone(dt.UTC)
    if is_sqlite(conn):
        return when.strftime("%Y-%m-%d %H:%M:%S.%f")
    return when


def column(values: Any) -> list[Any]:
    """A numpy column as a list for the driver: NaN becomes None (NULL), numpy scalars Python."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            out = arr.astype(object)
            out[nan] = None
            return out.tolist()
    return arr.tolist()


def json_text(value: Any) -> str | None:
    """JSON text for a JSON column written with raw SQL (None stays NULL)."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def json_safe(value: Any, what: str) -> Any:
    """``value`` as plain JSON data (numpy values converted); InvalidInput naming ``what`` if
    it cannot be JSON (NaN is refused too)."""
    try:
        return json.loads(json.dumps(value, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"must be JSON data: {exc}", what) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def reserve_ids(conn: Connection, table: str, n: int) -> np.ndarray:
    """``n`` new primary keys for ``table``, taken inside the current write transaction.

    SQLite: the caller holds the write lock (BEGIN IMMEDIATE), so ``max(id)+1 ..`` is safe.
    PostgreSQL: values drawn from the table's sequence (other writers may interleave, so the
    ids are unique but not always contiguous).
    """
    if n <= 0:
        return np.zeros(0, np.int64)
    if is_sqlite(conn):
        start = conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"').scalar()
        return np.arange(int(start) + 1, int(start) + 1 + n, dtype=np.int64)
    cur = raw_cursor(conn)
    cur.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        (table, n),
    )
    ids = np.fromiter((r[0] for r in cur.fetchall()), dtype=np.int64, count=n)
    cur.close()
    return ids


def _sqlite_literal(value: Any) -> str | None:
    """``value`` as a safe SQLite literal, or None when it has to be bound."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return "NULL" if math.isnan(v) else (repr(v) if math.isfinite(v) else None)
    if isinstance(value, str) and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


def insert_with_ids(
    conn: Connection, table: str, ids: np.ndarray, columns: dict[str, Any], n: int
) -> None:
    """Insert rows with the ids :func:`reserve_ids` gave. On SQLite those are exactly the rowids
    it assigns itself (``max(id) + 1`` on, under the write lock), so the id is not bound per
    row; the last id is checked after the insert."""
    if not is_sqlite(conn) or n == 0:
        insert_columns(conn, table, {"id": ids.tolist(), **columns}, n)
        return
    insert_columns(conn, table, columns, n)
    last = conn.exec_driver_sql(f'SELECT max(id) FROM "{table}"').scalar()
    if last != int(ids[-1]):  # never expected: the transaction is rolled back
        raise RuntimeError(f"{table}: rows got ids up to {last}, expected {int(ids[-1])}")


def insert_columns(conn: Connection, table: str, columns: dict[str, Any], n: int) -> None:
    """Insert ``n`` rows given column-wise: a ``list`` holds one value per row, anything else
    is one value for every row. Values must already be driver types (see :func:`column`)."""
    if n <= 0:
        return
    names = list(columns)
    for name, values in columns.items():
        if isinstance(values, list) and len(values) != n:
            raise ValueError(f"column {name} has {len(values)} values, not {n}")
    quoted = ", ".join(f'"{c}"' for c in names)
    if is_sqlite(conn):
        marks: list[str] = []
        varying: list[Iterable[Any]] = []
        for name in names:
            values = columns[name]
            literal = None if isinstance(values, list) else _sqlite_literal(values)
            if literal is not None:
                marks.append(literal)
            else:
                marks.append("?")
                varying.append(values if isinstance(values, list) else repeat(values, n))
        sql = f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join(marks)})'
        cur = raw_cursor(conn)
        cur.executemany(sql, zip(*varying, strict=False) if varying else repeat((), n))
        cur.close()
        return
    streams = [v if isinstance(v, list) else repeat(v, n) for v in columns.values()]
    types = _pg_binary_types(table, names)
    cur = raw_cursor(conn)
    # Binary COPY is ~4x faster than text COPY from Python rows; JSON columns use text.
    options = " (FORMAT BINARY)" if types else ""
    with cur.copy(f'COPY "{table}" ({quoted}) FROM STDIN{options}') as copy:
        if types:
            copy.set_types(types)
        for row in zip(*streams, strict=False):
            copy.write_row(row)
    cur.close()


def _pg_binary_types(table: str, names: Sequence[str]) -> list[str] | None:
    """PostgreSQL type names of the columns for a binary COPY, or None if one has no
    binary form we write (JSON)."""
    import sqlalchemy as sa

    from annoloop.store.schema import UTCDateTime, metadata

    order = (
        (UTCDateTime, "timestamptz"),
        (sa.SmallInteger, "int2"),
        (sa.BigInteger, "int8"),
        (sa.Integer, "int4"),
        (sa.Float, "float8"),
        (sa.Boolean, "bool"),
        (sa.LargeBinary, "bytea"),
        (sa.String, "text"),  # Text is a String
    )
    out = []
    for name in names:
        col_type = metadata.tables[table].c[name].type
        found = next((pg for cls, pg in order if isinstance(col_type, cls)), None)
        if found is None:
            return None
        out.append(found)
    return out


def in_filter(conn: Connection, column_sql: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """SQL ``column IN (...)`` for any number of values, and its parameters."""
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    if not values:
        return "1 = 0", []
    if not is_sqlite(conn):
        return f"{column_sql} = ANY(%s)", [values]
    if len(values) <= _MAX_PLACEHOLDERS:
        return f"{column_sql} IN ({', '.join('?' * len(values))})", values
    return f"{column_sql} IN (SELECT value FROM json_each(?))", [json.dumps(values)]


def missing_float_sql(conn: Connection) -> str:
    """A literal that ``COALESCE`` puts in place of a NULL float so that rows convert to a
    float array in one step (+infinity; the readers turn it into NaN; stored values are finite)."""
    return "9e999" if is_sqlite(conn) else "'Infinity'::float8"


def fetch_rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    """All rows of a raw SQL query, as plain tuples."""
    cur = raw_cursor(conn)
    cur.execute(sql, list(params))
    rows = cur.fetchall()
    cur.close()
    return rows


def int_column(values: Sequence[Any], missing: int = -1) -> np.ndarray:
    """Ints with None -> ``missing``, as int64."""
    arr = np.array(values, dtype=object)
    if arr.size:
        arr[np.equal(arr, None)] = missing
    return arr.astype(np.int64)


def float_column(values: Sequence[Any]) -> np.ndarray:
    """Floats with None -> NaN, as float64."""
    arr = np.array(values, dtype=object)
    if arr.size:
        arr[np.equal(arr, None)] = np.nan
    return arr.astype(np.float64)


# -- columnar reads ------------------------------------------------------------------------------

# Column kinds for read_columns: "int" (nullable -> -1), "float" (nullable -> NaN), "time"
# (timestamp -> datetime64[us, UTC]), "text" (few distinct values: source, author), "category"
# (the same as a pandas Categorical), "sparse" (mostly NULL: shape JSON, score blobs).
_PG_TYPES = {"int": ">i8", "float": ">f8", "time": ">i8", "text": ">i8", "category": ">i8"}
_TEXT_KINDS = ("text", "category", "sparse")


def _time_us_sql(conn: Connection, col: str) -> str:
    """SQL for a timestamp column as integer microseconds since 1970 (exact)."""
    if is_sqlite(conn):
        # SQLAlchemy's text form "YYYY-MM-DD HH:MM:SS.ffffff" (the fraction may be missing)
        return (
            f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000 + "
            f"CAST(substr(substr({col}, 21) || '000000', 1, 6) AS INTEGER))"
        )
    return f"(EXTRACT(EPOCH FROM {col}) * 1000000)::int8"


def _numeric_sql(conn: Connection, col: str, kind: str) -> str:
    if kind == "int":
        return f"COALESCE({col}, -1)"
    if kind == "float":
        return f"COALESCE({col}, {missing_float_sql(conn)})"
    if kind == "time":
        return _time_us_sql(conn, col)
    raise ValueError(kind)


def _finish(kind: str, values: np.ndarray) -> np.ndarray:
    if kind == "int":
        return values.astype(np.int64)  # a copy: Arrow's buffers are read-only
    if kind == "float":
        out = values.astype(np.float64)
        out[np.isinf(out)] = np.nan
        return out
    if kind == "time":
        missing = np.equal(values, None)
        out = np.where(missing, 0, values).astype(np.int64).astype("datetime64[us]")
        out[missing] = np.datetime64("NaT")
        return out
    if kind == "category":
        import pandas as pd

        codes, uniques = pd.factorize(values)  # None -> -1
        return _categorical(codes, list(uniques))
    return values


def _categorical(codes: np.ndarray, categories: Sequence[Any]) -> Any:
    import pandas as pd

    return pd.Categorical.from_codes(codes, categories=pd.Index(list(categories), dtype=object))


def read_columns(
    conn: Connection,
    table: str,
    where: str,
    params: Sequence[Any],
    columns: Sequence[tuple[str, str, str]],
) -> dict[str, np.ndarray]:
    """Read ``(name, column sql, kind)`` columns of ``table`` (alias ``t``) ordered by id.

    SQLite: one ``SELECT`` and ``fetchall``. PostgreSQL: the numeric and coded text columns
    come through one binary ``COPY .. TO STDOUT`` parsed by numpy, sparse columns through a
    second query over the rows that have a value.
    """
    if is_sqlite(conn):
        return _read_sqlite(conn, table, where, params, columns)
    return _read_postgres(conn, table, where, params, columns)


def _read_sqlite(conn, table, where, params, columns):  # type: ignore[no-untyped-def]
    exprs = [
        expr if kind in _TEXT_KINDS else _numeric_sql(conn, expr, kind) for _, expr, kind in columns
    ]
    sql = f'SELECT {", ".join(exprs)} FROM "{table}" t{where} ORDER BY t.id'
    fast = _read_sqlite_arrow(conn, table, where, params, columns)
    if fast is not None:
        return fast
    rows = fetch_rows(conn, sql, params)
    arr = np.array(rows, dtype=object).reshape(len(rows), len(columns))
    return {name: _finish(kind, arr[:, j]) for j, (name, _, kind) in enumerate(columns)}


def _read_postgres(conn, table, where, params, columns):  # type: ignore[no-untyped-def]
    out: dict[str, np.ndarray] = {}
    exprs: list[str] = []
    copy_params: list[Any] = []
    fixed: list[tuple[str, str]] = []
    vocab: dict[str, list[Any]] = {}
    for name, expr, kind in columns:
        if kind == "sparse":
            continue
        if kind in ("text", "category"):
            # dictionary-encode: the distinct values once, then a small int per row
            values = [
                r[0]
                for r in fetch_rows(conn, f'SELECT DISTINCT {expr} FROM "{table}" t{where}', params)
            ]
            vocab[name] = [None, *(v for v in values if v is not None)]
            exprs.append(f"COALESCE(array_position(%s::text[], {expr}), 0)::int8")
            copy_params.append(vocab[name][1:])
        else:
            exprs.append(
                f"({_numeric_sql(conn, expr, kind)})::{'float8' if kind == 'float' else 'int8'}"
            )
        fixed.append((name, kind))
    select = f'SELECT {", ".join(exprs)} FROM "{table}" t{where} ORDER BY t.id'
    sql = f"COPY ({select}) TO STDOUT (FORMAT BINARY)"
    cur = raw_cursor(conn)
    # the parameters are bound in the order they appear: the vocabularies, then the filter
    with cur.copy(sql, [*copy_params, *params]) as copy:
        data = b"".join(bytes(block) for block in copy)
    cur.close()
    fields = [("n", ">i2")]
    for j, (_, kind) in enumerate(fixed):
        fields += [(f"l{j}", ">i4"), (f"v{j}", _PG_TYPES[kind])]
    dtype = np.dtype(fields)
    # header: 11-byte signature, int32 flags, int32 extension length (+ extension)
    ext = int.from_bytes(data[15:19], "big") if len(data) >= 19 else 0
    body = data[19 + ext : -2] if len(data) >= 21 else b""
    records = np.frombuffer(body, dtype=dtype, count=len(body) // dtype.itemsize)
    for j, (name, kind) in enumerate(fixed):
        values = records[f"v{j}"]
        if kind == "text":
            table_ = np.array(vocab[name], dtype=object)
            out[name] = table_[values.astype(np.int64)]
        elif kind == "category":
            out[name] = _categorical(values.astype(np.int64) - 1, vocab[name][1:])
        else:
            out[name] = _finish(kind, values.astype(values.dtype.newbyteorder("=")))
    ids = out.get("id")
    for name, expr, kind in columns:
        if kind != "sparse":
            continue
        col = np.full(len(records), None, dtype=object)
        cond = f"{where} AND {expr} IS NOT NULL" if where else f" WHERE {expr} IS NOT NULL"
        rows = fetch_rows(conn, f'SELECT t.id, {expr} FROM "{table}" t{cond}', params)
        if rows and ids is not None:
            pos = np.searchsorted(ids, np.array([r[0] for r in rows], dtype=np.int64))
            col[pos] = [r[1] for r in rows]
        out[name] = col
    return out


# Below this many rows the plain driver is as fast as starting a native reader.
ARROW_READ_MIN_ROWS = 20_000


def _read_sqlite_arrow(conn, table, where, params, columns):  # type: ignore[no-untyped-def]
    """Read through connectorx (native, straight into Arrow columns) when it can be used.

    The stdlib driver builds one Python object per value, which caps a 1M-row read at a few
    seconds. connectorx reads the file on its own connection, so it is used only for a read
    transaction on a file database (a write transaction may hold rows it cannot see), when every
    parameter can be inlined as a safe literal, and for large tables. Returns None otherwise.
    """
    try:
        import connectorx
    except ImportError:
        return None
    from annoloop.store.engine import _WRITE_OPTION

    database = conn.engine.url.database
    if not database or database == ":memory:" or "mode=memory" in str(conn.engine.url):
        return None
    if conn.get_execution_options().get(_WRITE_OPTION, False):
        return None
    literals = [_sqlite_literal(p) for p in params]
    if any(lit is None for lit in literals):
        return None
    # two subqueries: SQLite answers min() or max() alone from the index, both together by a scan
    low, high = fetch_rows(
        conn, f'SELECT (SELECT min(id) FROM "{table}"), (SELECT max(id) FROM "{table}")'
    )[0]
    if low is None or high - low < ARROW_READ_MIN_ROWS:
        return None
    # timestamps come as their stored text (`|| ''` keeps connectorx from parsing each one) and
    # each distinct text is parsed below; SQLite builds differ in how strftime('%s') rounds
    # fractional seconds, so the text is the exact value
    exprs = [
        expr
        if kind in _TEXT_KINDS
        else f"{expr} || ''"
        if kind == "time"
        else _numeric_sql(conn, expr, kind)
        for _, expr, kind in columns
    ]
    # the id column, when read, also orders the parts (else t.id is added)
    id_col = next((j for j, (_, e, k) in enumerate(columns) if e == "t.id" and k == "int"), None)
    parts = where.split("?")  # the generated filter holds "?" only as placeholders
    if len(parts) != len(literals) + 1:
        return None
    where = "".join(p + lit for p, lit in zip(parts, [*literals, ""], strict=True))
    queries = _id_range_queries(table, exprs, where, int(low), int(high), id_col)
    try:
        arrow = connectorx.read_sql(f"sqlite://{database}", queries, return_type="arrow")
    except Exception:  # an unsupported type or a locked file: the driver path always works
        return None
    arrow = _in_id_order(arrow, id_col)
    out = {}
    for j, (name, _, kind) in enumerate(columns):
        col = arrow.column(j)
        if kind in ("text", "sparse"):
            out[name] = _object_column(col)
        elif kind == "category":
            out[name] = _categorical_column(col)
        elif kind == "time":
            out[name] = _time_column(col)
        else:
            out[name] = _finish(kind, col.to_numpy(zero_copy_only=False))
    return out


def _id_range_queries(
    table: str, exprs: list[str], where: str, low: int, high: int, id_col: int | None = None
) -> list[str]:
    """One query per id range, so that connectorx reads them on parallel connections (one per
    core, at most 4); unless ``exprs[id_col]`` is the id, each also selects ``t.id`` last, to
    put the parts back in order."""
    import os

    parts = max(1, min(4, os.cpu_count() or 1, (high - low) // max(ARROW_READ_MIN_ROWS, 1)))
    cond = f"({where.removeprefix(' WHERE ')}) AND " if where else ""
    edges = np.linspace(low, high + 1, parts + 1).astype(np.int64)
    select = (
        f'SELECT {", ".join(exprs if id_col is not None else [*exprs, "t.id"])} FROM "{table}" t'
    )
    return [
        f"{select} WHERE {cond}t.id >= {a} AND t.id < {b} ORDER BY t.id" for a, b in pairwise(edges)
    ]


def _in_id_order(table: Any, id_col: int | None = None) -> Any:
    """The parts of a partitioned read in id order (connectorx hands them back as they finish),
    ordered by column ``id_col``, or by the trailing id column, which is then dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    key = table.num_columns - 1 if id_col is None else id_col
    batches = [b for b in table.to_batches() if b.num_rows]
    batches.sort(key=lambda b: b.column(key)[0].as_py())
    ordered = pa.Table.from_batches(batches, schema=table.schema) if batches else table
    ids = ordered.column(key).to_numpy()
    if ids.size > 1 and not (np.diff(ids) > 0).all():  # batches interleaved: sort the rows
        ordered = ordered.take(pc.sort_indices(ordered.column(key)))
    return ordered if id_col is not None else ordered.remove_column(key)


def _dictionary(col: Any) -> tuple[list[Any], np.ndarray]:
    """An Arrow column's distinct values and, per row, the code of its value (-1 for null):
    the work per distinct value, not per row."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(col).combine_chunks()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return encoded.dictionary.to_pylist(), codes


def _categorical_column(col: Any) -> Any:
    """An Arrow string column as a pandas Categorical, straight from its dictionary encoding."""
    values, codes = _dictionary(col.cast("string"))
    return _categorical(codes, values)


def _time_column(col: Any) -> np.ndarray:
    """Stored timestamp texts -> datetime64[us]; each distinct text is parsed once (rows of one
    bulk insert share theirs)."""
    import pandas as pd

    values, codes = _dictionary(col.cast("string"))
    parsed = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True)
    parsed = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    return np.append(parsed, np.datetime64("NaT", "us"))[codes]


def _object_column(col: Any) -> np.ndarray:
    """An Arrow string column as an object array, built per distinct value, not per row."""
    import pyarrow as pa

    if pa.types.is_null(col.type):
        return np.full(len(col), None, dtype=object)
    values, codes = _dictionary(col)
    return np.array([*values, None], dtype=object)[codes]  # code -1: the None at the end
