"""Crash-safe replacement of files and whole directories: the previous copy stays usable until the end.

Files go through :func:`atomic_write` (or :func:`atomic_path` for writers that want a file name), directories
(models, stores) through :func:`replace_directory`. Readers therefore see either the old or the new content
under the final name, never a truncated one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# mkstemp creates its file 0600; a finished file should get the permissions plain open() would give it
# (0666 less the umask). The umask can only be read by setting it, so that is done once, here.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary file name next to ``path``; on a clean exit the file written there replaces ``path``.

    The temporary file is a hidden ``.{name}.XXXX.tmp`` in ``path``'s own directory, because a rename is only
    atomic within one file system. On a clean exit it is fsynced, renamed onto ``path`` and the directory is
    fsynced; on any exception (``KeyboardInterrupt`` included) it is deleted and ``path`` is left as it was.
    For writers that need a name rather than a handle (SQLite, ``np.lib.format.open_memmap``); everything
    else should use :func:`atomic_write`.

    :param path: the final file; its directory must exist.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        yield tmp
        # Without the fsync a crash soon after the rename can leave ``path`` naming an empty or partial file:
        # the rename may reach the disk before the data does.
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename itself is an update of the directory, durable only once the directory is fsynced.
    fsync_path(path.parent)


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Yield a handle open for writing on a temporary file that replaces ``path`` when the block ends cleanly.

    See :func:`atomic_path` for where the temporary file lives and what happens on success and on error.

    :param path: the final file; its directory must exist.
    :param mode: a writing mode of :func:`open` (``"wb"``, ``"w"``).
    :param encoding: text encoding, for text modes.
    :param newline: newline translation, for text modes (``""`` for :mod:`csv`).
    """
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding, newline=newline) as handle:
        yield handle


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_write`).

    :param path: the final file; its directory must exist.
    :param data: the new content.
    """
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically (see :func:`atomic_write`).

    :param path: the final file; its directory must exist.
    :param text: the new content.
    :param encoding: text encoding.
    """
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file or directory, by name, to the disk."""
    fd = os.open(path, os.O_RDONLY)  # a read-only descriptor is enough for fsync on Linux, and works on directories
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_directory(staging: Path, target: Path) -> None:
    """Swap the fully written ``staging`` directory into ``target``.

    An existing ``target`` is renamed aside first and removed only after the swap, so at every instant either
    the old or the new copy sits at ``target`` (or, for the two renames' instant, aside under a known name).

    :param staging: the complete new directory, on the same file system as ``target``.
    :param target: where it should end up.
    """
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(target, backup)
    try:
        os.replace(staging, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
