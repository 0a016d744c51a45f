import multiprocessing as mp
import sqlite3

import pytest

from spart.teacher.cache import ScoreCache


def test_roundtrip_and_misses(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    cache.put_many("T", [(("q1", "p1", "h1"), -1.5), (("q1", "p2", "h2"), -2.0), (("q2", "p1", "h1"), -0.5)])
    got = cache.get_many("T", [("q1", "p1", "h1"), ("q1", "p2", "h2"), ("q2", "p1", "h1"), ("q3", "p1", "h1")])
    assert got == {("q1", "p1", "h1"): -1.5, ("q1", "p2", "h2"): -2.0, ("q2", "p1", "h1"): -0.5}
    assert cache.get_many("other-teacher", [("q1", "p1", "h1")]) == {}
    # same id, edited text -> different hash -> miss
    assert cache.get_many("T", [("q1", "p1", "edited")]) == {}
    assert len(cache) == 3


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "sub" / "c.sqlite"
    with ScoreCache(path) as cache:
        cache.put_many("T", [(("q", "p", "h"), -3.25)])
    with ScoreCache(path) as cache:
        assert cache.get_many("T", [("q", "p", "h")]) == {("q", "p", "h"): -3.25}
        mode = cache._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_many_ids_beyond_sqlite_parameter_limit(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    items = [(("q", f"p{i}", "h"), float(-i)) for i in range(2500)]
    cache.put_many("T", items)
    got = cache.get_many("T", [k for k, _ in items])
    assert len(got) == 2500 and got[("q", "p2499", "h")] == -2499.0


def test_failed_transaction_leaves_previous_rows(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    cache.put_many("T", [(("q", "p", "h"), -1.0)])
    # the second row cannot be bound, so sqlite fails mid-batch: the first row must be rolled back too
    with pytest.raises(sqlite3.Error):
        cache.put_many("T", [(("q", "p2", "h"), -2.0), (("q", object(), "h"), -3.0)])
    assert len(cache) == 1


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="not a usable SQLite"):
        ScoreCache(path)


def test_directory_path_rejected(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        ScoreCache(tmp_path)


def _writer(path, worker):
    cache = ScoreCache(path)
    for i in range(20):
        cache.put_many("T", [((f"q{worker}", f"p{i}", "h"), float(i))])
    cache.close()


def test_two_processes_write_concurrently(tmp_path):
    path = tmp_path / "c.sqlite"
    ScoreCache(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 40
