"""The store's SQLite database: schema, connection settings, transactions and SQLite's parameter limit.

The database is the source of truth of a :class:`FaissDocumentStore`: documents, metadata and embeddings live
in ``documents``; every change appends to ``changes`` (the change log), whose ``seq`` orders all writes. The
FAISS and BM25 indexes are derived from these two tables (see :mod:`.persistence`).

Durability: an on-disk database runs in WAL mode with ``synchronous=FULL``. Each write of the store is one
transaction, and with ``FULL`` SQLite fsyncs the WAL before ``COMMIT`` returns, so a change that has been
returned survives ``kill -9`` *and* a power cut (``NORMAL`` would survive a process crash but may lose the
last transactions on power loss). WAL lets readers, also in other processes, read while one writer writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

# SQLite's historical default limit on bound parameters per statement is 999; every "IN (?, ?, ...)" of the
# store goes through `batched` with this size.
SQLITE_MAX_PARAMS = 900
BUSY_TIMEOUT_MS = 60_000
CACHE_KIB = 65_536  # page cache per connection: the database stays on disk, this is what stays in RAM

# Change-log operations (column ``changes.op``).
OP_REMOVE = 0  # a row was deleted
OP_ADD = 1  # a row was inserted (an overwrite is a delete plus an insert under a new rowid)
OP_RETEXT = 2  # a row's BM25 text (its title) changed; the dense index is unaffected
OP_CLEAR = 3  # every row was deleted
OP_RESET = 4  # every row was deleted and the dense index forgets its training

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- JSON
);
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,   -- the FAISS id and BM25 key; never reused
    id TEXT NOT NULL UNIQUE,
    content TEXT,
    meta TEXT NOT NULL,              -- JSON object
    embedding BLOB,                  -- little-endian float32, NULL when the document has none
    blob_data BLOB,
    blob_info TEXT,                  -- JSON {"meta", "mime_type"} of the ByteStream
    sparse_embedding TEXT            -- JSON of SparseEmbedding.to_dict()
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    rowid INTEGER NOT NULL,
    op INTEGER NOT NULL
);
"""

T = TypeVar("T")


def batched(items: Sequence[T], size: int = SQLITE_MAX_PARAMS) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``: one slice per statement with bound parameters.

    :param items: Values to bind (ids, rowids ...).
    :param size: Slice length; defaults to the store's bound-parameter limit.
    """
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(n: int) -> str:
    """``"?, ?, ..."`` with ``n`` marks."""
    return ",".join("?" * n)


def connect(file: Path | None) -> sqlite3.Connection:
    """Open (creating if needed) the store database; ``None`` gives a private in-memory database.

    :param file: The database file.
    :raises ValueError: If the file exists but is not a SQLite database.
    """
    # Retrievers may run in worker threads (AsyncPipeline); the store serialises access with its own lock.
    conn = sqlite3.connect(":memory:" if file is None else str(file), check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if file is not None:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ValueError(f"{file}: SQLite could not switch to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ValueError(f"{file} is corrupt or not a document store database: {exc}") from exc
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, write: bool = True) -> Iterator[sqlite3.Cursor]:
    """One transaction: ``BEGIN IMMEDIATE`` (takes the write lock at once) or a plain read snapshot.

    Commits on a clean exit, rolls back on any exception (``KeyboardInterrupt`` included).
    """
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield cur
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


def last_seq(cur: sqlite3.Cursor | sqlite3.Connection) -> int:
    """The newest change-log sequence number ever assigned (0 for a new store); pruning does not lower it."""
    row = cur.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(row[0]) if row else 0


def last_rowid(cur: sqlite3.Cursor | sqlite3.Connection) -> int:
    """The largest document rowid ever assigned (0 for a new store)."""
    row = cur.execute("SELECT seq FROM sqlite_sequence WHERE name = 'documents'").fetchone()
    return int(row[0]) if row else 0


def get_setting(cur: sqlite3.Cursor | sqlite3.Connection, key: str, default: Any = None) -> Any:
    row = cur.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return default if row is None else json.loads(row[0])


def set_setting(cur: sqlite3.Cursor | sqlite3.Connection, key: str, value: Any) -> None:
    cur.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))
