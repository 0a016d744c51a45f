"""Persistent SQLite cache of teacher scores.

One row per (teacher fingerprint, question, passage id, passage text hash). The teacher fingerprint covers the
model weights, prompt template, precision and truncation limits, so changing any of them never serves a stale
score; the passage text hash means an edited passage is rescored even when its id stays the same.

SQLite runs in WAL mode: readers never block the writer and several processes (e.g. data-parallel trainer
ranks) may share one file. Each ``put_many`` is one transaction, so a crash leaves either all or none of a
batch's scores, never a torn row.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    teacher TEXT NOT NULL,
    question_hash TEXT NOT NULL,
    passage_id TEXT NOT NULL,
    passage_hash TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (teacher, question_hash, passage_id, passage_hash)
) WITHOUT ROWID
"""
# SQLite's default limit on host parameters is 999 in old builds; stay under it.
_MAX_PARAMS = 900

CacheKey = tuple[str, str, str]  # (question, passage id, passage text hash)


def question_hash(question: str) -> str:
    """Stable short hash of a question's text (the cache stores hashes, not raw questions)."""
    return hashlib.sha256(question.encode()).hexdigest()[:24]


class ScoreCache:
    """Question-likelihood scores on disk.

    Usage::

        cache = ScoreCache("scores.sqlite")
        cache.put_many("teacher-fp", [(("who?", "p1", "h1"), -1.25)])
        cache.get_many("teacher-fp", [("who?", "p1", "h1")])   # {("who?", "p1", "h1"): -1.25}

    :param path: the SQLite file; parent directories are created. ``":memory:"`` gives a private cache.
    :param timeout: seconds to wait for another process's write lock before failing.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            parent.mkdir(parents=True, exist_ok=True)
            if Path(self.path).is_dir():
                raise ValueError(f"score cache path {self.path} is a directory, expected a file")
        # check_same_thread=False + our own lock: Haystack may call a component from worker threads.
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._conn:
                self._conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"score cache {self.path} is not a usable SQLite database: {exc}") from exc

    def get_many(self, teacher: str, keys: Sequence[CacheKey]) -> dict[CacheKey, float]:
        """Scores already stored for ``keys``; missing keys are absent from the result."""
        found: dict[CacheKey, float] = {}
        by_question: dict[str, list[CacheKey]] = {}
        for key in keys:
            by_question.setdefault(key[0], []).append(key)
        with self._lock:
            for question, group in by_question.items():
                qhash = question_hash(question)
                wanted = {(k[1], k[2]): k for k in group}
                ids = sorted({k[1] for k in group})
                for start in range(0, len(ids), _MAX_PARAMS):
                    chunk = ids[start : start + _MAX_PARAMS]
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn.execute(
                        "SELECT passage_id, passage_hash, score FROM scores "
                        f"WHERE teacher = ? AND question_hash = ? AND passage_id IN ({marks})",
                        (teacher, qhash, *chunk),
                    ).fetchall()
                    for pid, phash, score in rows:
                        key = wanted.get((pid, phash))
                        if key is not None:
                            found[key] = float(score)
        return found

    def put_many(self, teacher: str, items: Iterable[tuple[CacheKey, float]]) -> int:
        """Store scores in one transaction; returns the number of rows written."""
        rows = [(teacher, question_hash(q), pid, phash, float(score)) for (q, pid, phash), score in items]
        if not rows:
            return 0
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        """Close the connection (also done when the cache is garbage-collected)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ScoreCache({self.path!r})"
