"""On-disk layout of a store directory, checkpoints of the derived indexes, and migration from format 1.

Format 2 (this one)::

    <store>/store.sqlite (+ -wal, -shm)   source of truth (see .database): documents, change log, settings
    <store>/index/CHECKPOINT              JSON {"name": "ckpt-..."}: the current checkpoint, replaced atomically
    <store>/index/ckpt-<id>/              one checkpoint: checkpoint.json (the change sequence each index
                                          reflects), dense.faiss (FAISS index, memory-mapped on load),
                                          BM25 segments, sorted vocabulary and df (.npy, memory-mapped)
    <store>/index/.lock                   serialises checkpoints between processes (flock)
    <store>/index/scratch-<id>/           one open store's BM25 files not yet in a checkpoint (segments and
                                          vocabularies spilled from memory); flock-ed by its process

A checkpoint is written into a fresh directory, fsynced, and only then named by ``CHECKPOINT``; unreferenced
checkpoint directories are removed afterwards. Unchanged BM25 segments are hard-linked from the previous
checkpoint (or the scratch directory), not copied. A scratch directory is deleted when its store is closed
or garbage-collected, and by the next open of the store once its process is gone. A missing, stale or
corrupt checkpoint is never fatal: the indexes are rebuilt (or caught up) from the database.

Format 1 (``CURRENT`` + ``snap-*/`` snapshots of an in-memory database) is converted by :func:`migrate_v1`,
which ``FaissDocumentStore`` runs on open and ``spart migrate-store`` runs explicitly.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sqlite3
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spart.atomic import fsync_path, write_bytes_atomic
from spart.components.document_stores.faiss import database

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
DB_FILE = "store.sqlite"
INDEX_DIR = "index"
POINTER = "CHECKPOINT"
CHECKPOINT_FILE = "checkpoint.json"
DENSE_FILE = "dense.faiss"
V1_DENSE_FILE = "dense.index"
V1_POINTER = "CURRENT"
V1_MANIFEST = "manifest.json"
V1_DB = "documents.sqlite"
MIGRATE_COMMAND = "spart migrate-store"


# ------------------------------------------------------------------------------------------ layout
def prepare_directory(path: Path, create: bool = True) -> bool:
    """Check that ``path`` is (or can become) a format-2 store; migrates a format-1 store first.

    :param path: The store directory.
    :param create: Create the directory when it does not exist.
    :returns: Whether the directory already held a store.
    :raises ValueError: If ``path`` is a file or a directory with other content.
    :raises FileNotFoundError: If ``path`` does not exist and ``create`` is false.
    """
    if path.exists() and not path.is_dir():
        raise ValueError(f"document store path {path} exists but is not a directory")
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"document store directory not found: {path}")
        path.mkdir(parents=True)
        return False
    if (path / DB_FILE).is_file():
        _remove_v1_leftovers(path)
        return True
    if (path / V1_POINTER).is_file():
        migrate_v1(path)
        return True
    others = [c.name for c in path.iterdir() if not c.name.startswith(".")]
    if others:
        raise ValueError(f"{path} is not a FaissDocumentStore directory (no {DB_FILE} and no {V1_POINTER} file)")
    if not create:
        raise FileNotFoundError(f"document store directory is empty: {path}")
    return False


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The configuration a store directory was created with (``embedding_dim``, ``factory``, BM25 settings).

    Reads only the settings (format 1: the manifest), so it is cheap. Nothing is modified.

    :raises FileNotFoundError: If ``path`` does not exist.
    :raises ValueError: If it is not a store directory.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"document store directory not found: {path}")
    if (path / DB_FILE).is_file():
        try:
            conn = sqlite3.connect(f"file:{path / DB_FILE}?mode=ro", uri=True)
            try:
                config = database.get_setting(conn, "config")
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{path / DB_FILE} is corrupt: {exc}") from exc
        if not isinstance(config, dict):
            raise ValueError(f"{path / DB_FILE} is corrupt: no store configuration")
        return config
    if (path / V1_POINTER).is_file():
        return dict(_read_v1_manifest(_v1_snapshot(path))["config"])
    raise ValueError(f"{path} is not a FaissDocumentStore directory (no {DB_FILE} and no {V1_POINTER} file)")


@contextmanager
def checkpoint_lock(path: Path) -> Iterator[None]:
    """Exclusive lock (between processes) for writing checkpoints and migrating."""
    (path / INDEX_DIR).mkdir(exist_ok=True)
    with open(path / INDEX_DIR / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------ scratch
SCRATCH_PREFIX = "scratch-"


class ScratchDir:
    """A private directory under ``<store>/index`` for derived-index files that are in no checkpoint yet.

    Created on first use and held with an ``flock`` for the life of the process, so that
    :func:`remove_stale_scratch` (run on open) can tell an abandoned one from one in use. Removed by
    :meth:`close`, or when the object is garbage-collected or the interpreter exits.

    :param path: The store directory.
    """

    def __init__(self, path: Path):
        self._store = path
        self._dir: Path | None = None
        self._finalizer: weakref.finalize | None = None

    def get(self) -> Path:
        """The directory (created on the first call)."""
        if self._dir is None or not self._dir.is_dir():
            index = self._store / INDEX_DIR
            index.mkdir(exist_ok=True)
            # locked under a hidden name, then renamed: a concurrent remove_stale_scratch never sees it unlocked
            staging = index / f".{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}"
            staging.mkdir()
            lock = open(staging / ".lock", "a+")
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            directory = index / staging.name[1:]
            os.replace(staging, directory)
            self._dir = directory
            self._finalizer = weakref.finalize(self, _remove_scratch, directory, lock)
        return self._dir

    def close(self) -> None:
        """Delete the directory (files mapped from it stay readable until unmapped)."""
        if self._finalizer is not None:
            self._finalizer()
        self._dir = self._finalizer = None


def _remove_scratch(directory: Path, lock) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    lock.close()


def remove_stale_scratch(path: Path) -> None:
    """Delete the scratch directories of ``path`` whose process is gone (their flock is free)."""
    index = path / INDEX_DIR
    if not index.is_dir():
        return
    for child in index.iterdir():
        if not (child.is_dir() and child.name.startswith(SCRATCH_PREFIX)):
            continue
        try:
            with open(child / ".lock", "a+") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(child, ignore_errors=True)
        except OSError:  # held by a live store (or already gone)
            continue


# ------------------------------------------------------------------------------------------ checkpoints
def new_checkpoint_dir(path: Path) -> Path:
    directory = path / INDEX_DIR / f"ckpt-{uuid.uuid4().hex[:12]}"
    directory.mkdir(parents=True)
    return directory


def publish_checkpoint(path: Path, directory: Path, manifest: dict[str, Any]) -> None:
    """Write ``checkpoint.json`` into ``directory``, make it durable, point ``CHECKPOINT`` at it, drop old ones."""
    manifest = {"format_version": FORMAT_VERSION, **manifest}
    with open(directory / CHECKPOINT_FILE, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_path(directory)
    write_bytes_atomic(path / INDEX_DIR / POINTER, json.dumps({"name": directory.name}).encode())
    for child in (path / INDEX_DIR).iterdir():
        if child.is_dir() and child.name.startswith("ckpt-") and child != directory:
            shutil.rmtree(child, ignore_errors=True)


def read_checkpoint(path: Path) -> tuple[Path, dict[str, Any]] | None:
    """The current checkpoint (directory, manifest), or ``None`` if there is none or it is unreadable."""
    pointer = path / INDEX_DIR / POINTER
    if not pointer.is_file():
        return None
    try:
        directory = path / INDEX_DIR / json.loads(pointer.read_text())["name"]
        manifest = json.loads((directory / CHECKPOINT_FILE).read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported checkpoint format {manifest.get('format_version')!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring the index checkpoint of %s (%s); the indexes are rebuilt from the database", path, exc)
        return None
    return directory, manifest


# ------------------------------------------------------------------------------------------ format 1
def _v1_snapshot(path: Path) -> Path:
    pointer = path / V1_POINTER
    try:
        name = json.loads(pointer.read_text())["snapshot"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{pointer} is corrupt: {exc}") from exc
    snapshot = path / name
    if not snapshot.is_dir():
        raise ValueError(f"{path} is corrupt: {V1_POINTER} points to missing snapshot {name!r}")
    return snapshot


def _read_v1_manifest(snapshot: Path) -> dict[str, Any]:
    file = snapshot / V1_MANIFEST
    try:
        manifest = json.loads(file.read_text())
        if manifest["format_version"] != 1 or not isinstance(manifest["config"], dict):
            raise ValueError(f"unsupported format_version {manifest['format_version']!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{file} is corrupt: {exc}") from exc
    return manifest


def _remove_v1_leftovers(path: Path) -> None:
    for child in path.iterdir():
        if child.name == V1_POINTER or (child.is_dir() and child.name.startswith(("snap-", ".tmp-"))):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def migrate_v1(path: str | os.PathLike) -> bool:
    """Convert a format-1 store directory (``CURRENT`` + snapshots) to format 2 in place.

    Crash-safe: the new database is built under a temporary name and renamed into place last (the commit
    point); the format-1 files are removed only after that, and leftovers are removed on the next open. The
    format-1 dense index is kept as the first checkpoint (no retraining); BM25 is rebuilt on first open.

    :param path: The store directory.
    :returns: ``True`` if a format-1 store was converted, ``False`` if it already was format 2.
    :raises ValueError: If ``path`` is not a store directory or its format-1 snapshot is corrupt.
    """
    from spart.index import DenseIndex

    path = Path(path)
    if (path / DB_FILE).is_file():
        _remove_v1_leftovers(path)
        return False
    if not (path / V1_POINTER).is_file():
        raise ValueError(f"{path} is not a format-1 FaissDocumentStore directory (no {V1_POINTER} file)")
    snapshot = _v1_snapshot(path)
    manifest = _read_v1_manifest(snapshot)
    logger.info("migrating the format-1 document store %s to format %d", path, FORMAT_VERSION)
    with checkpoint_lock(path):
        if (path / DB_FILE).is_file():  # another process migrated it meanwhile
            return False
        tmp = path / f".{DB_FILE}.migrating"
        tmp.unlink(missing_ok=True)
        conn = database.connect(tmp)
        try:
            old = snapshot / V1_DB
            if not old.is_file():
                raise ValueError(f"{snapshot} is corrupt: {V1_DB} is missing")
            conn.execute("ATTACH DATABASE ? AS v1", (str(old),))
            try:
                with database.transaction(conn) as cur:
                    cur.execute(
                        "INSERT INTO documents (rowid, id, content, meta, embedding, blob_data, blob_info, "
                        "sparse_embedding) SELECT rowid, id, content, meta, embedding, blob_data, blob_info, "
                        "sparse_embedding FROM v1.documents ORDER BY rowid"
                    )
                    database.set_setting(cur, "format_version", FORMAT_VERSION)
                    database.set_setting(cur, "config", manifest["config"])
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"{old} is corrupt: {exc}") from exc
            finally:
                conn.execute("DETACH DATABASE v1")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException:
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)
            raise
        conn.close()
        if (snapshot / V1_DENSE_FILE).is_file():
            try:
                dense = DenseIndex.load(snapshot / V1_DENSE_FILE)
                directory = new_checkpoint_dir(path)
                header = dense.write_file(directory / DENSE_FILE)
                publish_checkpoint(
                    path, directory, {"dense": {"seq": 0, "file": DENSE_FILE, "header": header}, "bm25": None}
                )
            except ValueError as exc:
                logger.warning("format-1 dense index of %s not reused (%s); it is rebuilt", path, exc)
        os.replace(tmp, path / DB_FILE)  # the commit point
        fsync_path(path)
        _remove_v1_leftovers(path)
    return True
