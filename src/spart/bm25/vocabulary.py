"""The term -> id map and document frequencies of :class:`spart.bm25.segments.SegmentedBM25`, memory-mapped once saved.

Terms get ids in order of first appearance and keep them (segments store term ids). A vocabulary has a
*saved* part, read from files and memory-mapped, and the terms added since, in a dict:

* ``vocab-<uid>.terms.npy``: the saved terms of at most ``MAX_WIDTH`` UTF-8 bytes, sorted, as a fixed-width
  bytes array; ``vocab-<uid>.ids.npy``: the id of each (int32). A lookup is a vectorised binary search.
* ``vocab-<uid>.long.json``: ``{term: id}`` for longer terms (rare; held in memory).
* ``df-<uid>.npy``: the document frequency of every id (int64), mapped copy-on-write: only the pages of
  terms whose frequency changed since become private memory. Written anew by every save (a new name, so
  that a mapped file is never overwritten).

So the memory a vocabulary holds is the dict of new terms plus the touched pages, not a Python object per
term of the corpus. :meth:`Vocabulary.save` writes a new saved part (merging the new terms into the sorted
arrays, or hard-linking the old files when there are none) and :meth:`Vocabulary.adopt` maps it in place
of the in-memory state.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path

import numpy as np

from spart.atomic import fsync_path

MAX_WIDTH = 32  # bytes per term in the sorted array; longer terms go to the `long` dict
_SUFFIXES = (".terms.npy", ".ids.npy", ".long.json")


def _fits(term: bytes) -> bool:
    # numpy's fixed-width bytes drop trailing NULs, so such a term could not be found again
    return len(term) <= MAX_WIDTH and not term.endswith(b"\0")


def _write_npy(path: Path, parts: Sequence[np.ndarray], dtype) -> None:
    """One ``.npy`` file holding the concatenation of ``parts`` (written without building it in memory)."""
    total = sum(len(p) for p in parts)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(total,))
    start = 0
    for part in parts:
        out[start : start + len(part)] = part
        start += len(part)
    out.flush()
    del out
    fsync_path(path)


class Vocabulary:
    """Term ids and document frequencies (see the module docstring).

    Example::

        vocab = Vocabulary()
        ids = vocab.add(["fox", "dog", "fox"])   # array([0, 1, 0])
        vocab.lookup(["dog", "cat"])             # array([ 1, -1])
    """

    def __init__(self):
        self._terms = np.zeros(0, dtype="S1")  # saved terms that fit MAX_WIDTH, sorted
        self._ids = np.zeros(0, dtype=np.int32)
        self._long: dict[str, int] = {}  # saved terms that do not fit
        self._n_saved = 0  # ids < _n_saved belong to the saved part
        self._new: dict[str, int] = {}  # added since
        self._df_saved = np.zeros(0, dtype=np.int64)  # df of the saved ids (mapped copy-on-write)
        self._df_new = np.zeros(0, dtype=np.int64)  # df of the new ids (grown by doubling)
        self.uid: str | None = None  # name of the saved part's files
        self.file_prefix: Path | None = None  # where they are (None: nothing saved)
        self.df_file: Path | None = None

    def __len__(self) -> int:
        return self._n_saved + len(self._new)

    @property
    def n_new(self) -> int:
        """Terms added since the saved part was written (held in a dict)."""
        return len(self._new)

    # ---------------------------------------------------------------- term ids
    def lookup(self, terms: Sequence[str]) -> np.ndarray:
        """The id of each term, ``-1`` for unknown ones (int64)."""
        out = np.fromiter(map(self._new.get, terms, repeat(-1)), dtype=np.int64, count=len(terms))
        if not (self._long or len(self._terms)):
            return out
        search_at, search_for = [], []
        for i in np.flatnonzero(out < 0).tolist():
            term = terms[i]
            found = self._long.get(term)
            if found is not None:
                out[i] = found
            elif len(self._terms):
                encoded = term.encode("utf-8")
                if _fits(encoded) and len(encoded) <= self._terms.itemsize:
                    search_at.append(i)
                    search_for.append(encoded)
        if search_for:
            wanted = np.array(search_for, dtype=self._terms.dtype)
            pos = np.minimum(np.searchsorted(self._terms, wanted), len(self._terms) - 1)
            hit = np.asarray(self._terms[pos]) == wanted
            out[np.asarray(search_at)[hit]] = self._ids[pos[hit]]
        return out

    def add(self, terms: Sequence[str]) -> np.ndarray:
        """The id of each term (int64), giving new terms the next free ids in order of appearance."""
        # distinct terms in order of appearance, and each term's index among them (C-level dict passes only)
        distinct = list(dict.fromkeys(terms))
        local = dict(zip(distinct, range(len(distinct))))
        positions = np.fromiter(map(local.__getitem__, terms), dtype=np.int64, count=len(terms))
        ids = self.lookup(distinct)
        unknown = np.flatnonzero(ids < 0)
        if len(unknown):
            first = len(self)
            for j, i in enumerate(unknown.tolist()):
                self._new[distinct[i]] = first + j
            ids[unknown] = np.arange(first, first + len(unknown))
            self._grow_df(len(self) - self._n_saved)
        return ids[positions]

    # ---------------------------------------------------------------- document frequencies
    def df(self, ids: np.ndarray) -> np.ndarray:
        """Document frequencies of ``ids`` (int64)."""
        ids = np.asarray(ids, dtype=np.int64)
        saved = ids < self._n_saved
        out = np.empty(len(ids), dtype=np.int64)
        out[saved] = self._df_saved[ids[saved]]
        out[~saved] = self._df_new[ids[~saved] - self._n_saved]
        return out

    def count(self, ids: np.ndarray, sign: int) -> None:
        """Add ``sign`` (+1 / -1) to the frequency of each entry of ``ids`` (repeats count repeatedly)."""
        ids = np.asarray(ids, dtype=np.int64)
        saved = ids < self._n_saved
        np.add.at(self._df_saved, ids[saved], sign)
        np.add.at(self._df_new, ids[~saved] - self._n_saved, sign)

    def all_df(self) -> np.ndarray:
        """Every document frequency, by id (a copy)."""
        return np.concatenate([self._df_saved, self._df_new[: len(self._new)]])

    def _grow_df(self, needed: int) -> None:
        if len(self._df_new) < needed:
            grown = np.zeros(max(needed, 2 * len(self._df_new), 1024), dtype=np.int64)
            grown[: len(self._df_new)] = self._df_new
            self._df_new = grown

    # ---------------------------------------------------------------- files
    def save(self, directory: Path) -> dict:
        """Write the vocabulary into ``directory`` (hard-linking unchanged files); returns its manifest entry."""
        if not self._new and self.file_prefix is not None and self._link_into(directory):
            uid = self.uid
        else:
            uid = uuid.uuid4().hex[:16]
            self._write_terms(directory / f"vocab-{uid}")
        df_name = f"df-{uuid.uuid4().hex[:16]}.npy"
        _write_npy(directory / df_name, [self._df_saved, self._df_new[: len(self._new)]], np.int64)
        return {"vocab": uid, "df": df_name, "size": len(self)}

    def _link_into(self, directory: Path) -> bool:
        target = directory / f"vocab-{self.uid}"
        if target == self.file_prefix:
            return True
        try:
            for suffix in _SUFFIXES:
                os.link(f"{self.file_prefix}{suffix}", f"{target}{suffix}")
        except OSError:
            for suffix in _SUFFIXES:
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            return False
        return True

    def _write_terms(self, prefix: Path) -> None:
        long = dict(self._long)
        short_terms, short_ids = [], []
        for term, i in self._new.items():
            encoded = term.encode("utf-8")
            if _fits(encoded):
                short_terms.append(encoded)
                short_ids.append(i)
            else:
                long[term] = i
        width = max([self._terms.itemsize, 1] + [len(t) for t in short_terms])
        added = np.array(short_terms, dtype=f"S{width}")
        order = np.argsort(added, kind="stable")
        added, added_ids = added[order], np.asarray(short_ids, dtype=np.int32)[order]
        # final position of each added term in the merged sorted array; the saved terms fill the rest
        at = np.searchsorted(self._terms.astype(f"S{width}", copy=False), added) + np.arange(len(added))
        rest = np.ones(len(self._terms) + len(added), dtype=bool)
        rest[at] = False
        for name, old, new, dtype in (
            ("terms", self._terms, added, f"S{width}"),
            ("ids", self._ids, added_ids, np.int32),
        ):
            path = Path(f"{prefix}.{name}.npy")
            out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(len(rest),))
            out[rest] = old
            out[~rest] = new
            out.flush()
            del out
            fsync_path(path)
        with open(f"{prefix}.long.json", "w", encoding="utf-8") as fh:
            json.dump(long, fh)
            fh.flush()
            os.fsync(fh.fileno())

    def adopt(self, directory: Path, entry: dict) -> None:
        """Map the files :meth:`save` wrote into ``directory`` in place of this vocabulary's state."""
        self._load(directory, entry)

    @classmethod
    def load(cls, directory: Path, entry: dict) -> Vocabulary:
        """The vocabulary saved in ``directory`` with manifest ``entry`` (memory-mapped).

        :raises ValueError: If a file is missing or inconsistent.
        """
        vocab = cls()
        vocab._load(directory, entry)
        return vocab

    def _load(self, directory: Path, entry: dict) -> None:
        try:
            prefix = directory / f"vocab-{entry['vocab']}"
            terms = np.load(f"{prefix}.terms.npy", mmap_mode="r", allow_pickle=False)
            ids = np.load(f"{prefix}.ids.npy", mmap_mode="r", allow_pickle=False)
            long = json.loads(Path(f"{prefix}.long.json").read_text(encoding="utf-8"))
            df = np.load(directory / entry["df"], mmap_mode="c", allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"BM25 vocabulary in {directory} is corrupt: {exc}") from exc
        if terms.dtype.kind != "S" or len(ids) != len(terms) or not isinstance(long, dict):
            raise ValueError(f"BM25 vocabulary in {directory} is corrupt: bad terms / ids arrays")
        if len(df) != len(terms) + len(long) or df.dtype != np.int64:
            raise ValueError(
                f"BM25 vocabulary in {directory} is corrupt: {len(terms) + len(long)} terms but {len(df)} df entries"
            )
        self._terms, self._ids, self._long = terms, ids, long
        self._n_saved = len(df)
        self._new, self._df_saved, self._df_new = {}, df, np.zeros(0, dtype=np.int64)
        self.uid, self.file_prefix, self.df_file = str(entry["vocab"]), prefix, directory / entry["df"]

    @classmethod
    def from_terms(cls, terms: Iterable[str], df: np.ndarray) -> Vocabulary:
        """An in-memory vocabulary with ids in the order of ``terms`` (e.g. an old ``vocab.json`` checkpoint)."""
        vocab = cls()
        for term in terms:
            vocab._new.setdefault(term, len(vocab._new))
        if len(vocab._new) != len(df):
            raise ValueError(f"{len(vocab._new)} distinct terms but {len(df)} df entries")
        vocab._df_new = np.array(df, dtype=np.int64)
        return vocab

    def files(self) -> list[Path]:
        """The files this vocabulary is mapped from (for removing a spilled copy)."""
        if self.file_prefix is None:
            return []
        return [Path(f"{self.file_prefix}{s}") for s in _SUFFIXES] + [self.df_file]
