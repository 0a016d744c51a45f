"""Kill-9 check of the store's durability, shared by the unit suite and ``benchmarks/bench_store_crash.py``.

A writer subprocess (``python -m spart.components.document_stores.faiss.crash_check DIR SEED``) applies a
seeded random sequence of writes, overwrites, deletes, title updates, checkpoints and reopens (after which
the dense vectors are memory-mapped and changes go to the index's delta) to a store, printing
``BEGIN <n>`` before and ``DONE <n>`` after each operation. :func:`run_trial` kills it with SIGKILL at a
random moment, then checks the reopened store:

* every operation that had printed ``DONE`` is present, and the one in flight is either fully applied or
  not at all (the documents equal one of the two states);
* dense and BM25 results equal those of a rebuild (the same database with its index checkpoint removed).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIM = 8
_WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()


def _operations(seed: int, count: int = 400) -> list[dict[str, Any]]:
    """The writer's deterministic operation sequence (each a JSON-able dict)."""
    rng = random.Random(seed)
    ops, next_id = [], 0
    for n in range(count):
        kind = rng.choices(["write", "overwrite", "delete", "title", "save", "reopen"], weights=[6, 2, 2, 1, 1, 1])[0]
        if kind == "write" or next_id == 0:
            size = rng.randint(1, 30)
            ops.append({"n": n, "kind": "write", "docs": [_doc(rng, f"d{next_id + i}") for i in range(size)]})
            next_id += size
        elif kind == "overwrite":
            ids = sorted({f"d{rng.randrange(next_id)}" for _ in range(rng.randint(1, 5))})
            ops.append({"n": n, "kind": "overwrite", "docs": [_doc(rng, i) for i in ids]})
        elif kind == "delete":
            ops.append({"n": n, "kind": "delete", "ids": sorted({f"d{rng.randrange(next_id)}" for _ in range(3)})})
        elif kind == "title":
            ops.append(
                {
                    "n": n,
                    "kind": "title",
                    "ids": sorted({f"d{rng.randrange(next_id)}" for _ in range(3)}),
                    "title": rng.choice(_WORDS),
                }
            )
        else:
            ops.append({"n": n, "kind": kind})
    return ops


def _doc(rng: random.Random, doc_id: str) -> dict[str, Any]:
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 12)))
    emb = [rng.gauss(0, 1) for _ in range(DIM)] if rng.random() < 0.9 else None
    return {"id": doc_id, "content": text, "meta": {"k": rng.randrange(5)}, "embedding": emb}


def _apply(model: dict[str, dict], op: dict[str, Any]) -> None:
    """Apply ``op`` to the expected state ``{id: {"content", "meta", "embedding"}}``."""
    if op["kind"] in ("write", "overwrite"):
        for d in op["docs"]:
            model[d["id"]] = {"content": d["content"], "meta": dict(d["meta"]), "embedding": d["embedding"]}
    elif op["kind"] == "delete":
        for i in op["ids"]:
            model.pop(i, None)
    elif op["kind"] == "title":
        for i in op["ids"]:
            if i in model:
                model[i]["meta"] = {**model[i]["meta"], "title": op["title"]}


def writer(directory: str, seed: int) -> None:
    """The writer process: apply the operations, announcing each one on stdout."""
    from haystack import Document
    from haystack.document_stores.types import DuplicatePolicy

    from spart.components.document_stores import FaissDocumentStore

    FaissDocumentStore.AUTO_CHECKPOINT_MIN = 40  # checkpoint often, so kills also land inside checkpoints
    store = FaissDocumentStore(path=directory, embedding_dim=DIM, bm25_method="okapi")
    print("READY", flush=True)
    for op in _operations(seed):
        print(f"BEGIN {op['n']}", flush=True)
        if op["kind"] in ("write", "overwrite"):
            docs = [
                Document(id=d["id"], content=d["content"], meta=d["meta"], embedding=d["embedding"]) for d in op["docs"]
            ]
            store.write_documents(docs, policy=DuplicatePolicy.OVERWRITE)
        elif op["kind"] == "delete":
            store.delete_documents(op["ids"])
        elif op["kind"] == "title":
            store.update_by_filter({"field": "id", "operator": "in", "value": op["ids"]}, {"title": op["title"]})
        elif op["kind"] == "reopen":
            store.close()
            store = FaissDocumentStore(path=directory, embedding_dim=DIM, bm25_method="okapi")
        else:
            store.save()
        print(f"DONE {op['n']}", flush=True)
    print("FINISHED", flush=True)


@dataclass
class TrialResult:
    """What one trial saw: operations done, whether one was in flight, and the documents after reopening."""

    done: int
    in_flight: bool
    documents: int
    seconds_to_kill: float


def run_trial(directory: Path, seed: int, max_delay_s: float = 1.0, queries: int = 5) -> TrialResult:
    """Run the writer on a fresh ``directory``, SIGKILL it after a random delay, and check the store.

    :raises AssertionError: If a returned write is missing, a write is half-applied, or the reopened indexes
        disagree with a rebuild.
    """
    import numpy as np

    from spart.components.document_stores import FaissDocumentStore

    shutil.rmtree(directory, ignore_errors=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "spart.components.document_stores.faiss.crash_check", str(directory), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise AssertionError(f"the writer did not start (said {line!r})")
    delay = random.Random(seed).uniform(0.0, max_delay_s)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    lines = proc.stdout.read().split()
    proc.wait()
    ops = _operations(seed)
    done = [int(n) for tag, n in zip(lines[::2], lines[1::2]) if tag == "DONE"]
    begun = [int(n) for tag, n in zip(lines[::2], lines[1::2]) if tag == "BEGIN"]
    n_done = len(done)
    in_flight = len(begun) > n_done

    before: dict[str, dict] = {}
    for op in ops[:n_done]:
        _apply(before, op)
    after = json.loads(json.dumps(before))
    if in_flight:
        _apply(after, ops[n_done])

    store = FaissDocumentStore(path=str(directory), embedding_dim=DIM, bm25_method="okapi")
    actual = {
        d.id: {
            "content": d.content,
            "meta": d.meta,
            "embedding": None if d.embedding is None else [float(x) for x in d.embedding],
        }
        for d in store.filter_documents()
    }
    assert _same(actual, before) or (in_flight and _same(actual, after)), (
        f"seed {seed}: after {n_done} returned operations (in flight: {in_flight}) the store holds "
        f"{len(actual)} documents, expected {len(before)}" + (f" or {len(after)}" if in_flight else "")
    )

    rebuilt_dir = directory.with_name(directory.name + "-rebuilt")
    shutil.rmtree(rebuilt_dir, ignore_errors=True)
    shutil.copytree(directory, rebuilt_dir, ignore=shutil.ignore_patterns("index"))
    rebuilt = FaissDocumentStore(path=str(rebuilt_dir), embedding_dim=DIM, bm25_method="okapi")
    rng = np.random.default_rng(seed)
    for _ in range(queries):
        q = rng.standard_normal(DIM)
        words = " ".join(rng.choice(_WORDS, size=2))
        for got, want in (
            (store.embedding_retrieval(q, 10), rebuilt.embedding_retrieval(q, 10)),
            (store.bm25_retrieval(words, 10), rebuilt.bm25_retrieval(words, 10)),
        ):
            assert [d.id for d in got] == [d.id for d in want], f"seed {seed}: results differ from a rebuild"
            np.testing.assert_allclose([d.score for d in got], [d.score for d in want], rtol=1e-6, atol=1e-6)
    store.close()
    rebuilt.close()
    shutil.rmtree(rebuilt_dir, ignore_errors=True)
    return TrialResult(done=n_done, in_flight=in_flight, documents=len(actual), seconds_to_kill=delay)


def _same(actual: dict[str, dict], expected: dict[str, dict]) -> bool:
    if actual.keys() != expected.keys():
        return False
    for key, want in expected.items():
        got = actual[key]
        if got["content"] != want["content"] or got["meta"] != want["meta"]:
            return False
        if (got["embedding"] is None) != (want["embedding"] is None):
            return False
        if want["embedding"] is not None:
            import numpy as np

            if not np.array_equal(np.float32(got["embedding"]), np.float32(want["embedding"])):
                return False
    return True


if __name__ == "__main__":
    writer(sys.argv[1], int(sys.argv[2]))
