"""Fast bulk loading: COPY on PostgreSQL, multi-row INSERTs elsewhere, streamed in bounded chunks."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

CHUNK_ROWS = 50_000


def bulk_insert(
    connection: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert rows (tuples in `columns` order) into `table`; returns how many. Memory stays bounded by
    one chunk whatever the number of rows. Runs inside the caller's transaction."""
    if connection.dialect.name == "postgresql":
        return _copy(connection, table, columns, rows)
    total = 0
    for chunk in _chunks(rows, 1_000):
        connection.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in chunk])
        total += len(chunk)
    return total


def _copy(
    connection: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None, "the connection was invalidated"
    cursor = dbapi_connection.cursor()
    column_list = ", ".join(f'"{column}"' for column in columns)
    statement = f"COPY \"{table.name}\" ({column_list}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    total = 0
    try:
        for chunk in _chunks(rows, CHUNK_ROWS):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerows(tuple(_csv_value(value) for value in row) for row in chunk)
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
            total += len(chunk)
    finally:
        cursor.close()
    return total


def _csv_value(value: Any) -> Any:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return value.value
    return value


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
