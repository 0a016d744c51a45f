"""Resident memory of the store's BM25 index: after writing N documents, after ``save()``, and after reopening.

Each measurement runs in its own subprocess (so the figures are its own), for this checkout (``current``) and
for the ``src/spart`` of ``--baseline-commit`` (``baseline``, extracted with ``git archive``). The documents
have no embeddings, so the dense index is empty and what is measured is SQLite's page cache plus the BM25
index. Corpus: ``N`` synthetic passages of 40-120 words drawn Zipf-like (s=1) from a ``--vocab``-word
vocabulary (50k: few distinct terms; 2M: a Wikipedia-like long tail, most of them seen once or twice).

Figures are from ``/proc/self/status``: ``RssAnon`` (private memory: what the index costs) and ``RssFile``
(pages of memory-mapped files that happen to be resident; the kernel can drop them at any time), minus the
same figures of the process after the imports and the corpus generator's word table. Each is taken after
``gc.collect()`` and glibc's ``malloc_trim(0)``, so heap that was freed but not yet returned to the system
is not counted; the peak (``VmHWM``, reset after the word table) counts everything.

Run (from the repo root; ~1-2 minutes per row)::

    nice -n 15 .venv/bin/python benchmarks/bench_bm25_memory.py --n 50000 --vocab 50000 2000000
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_store_scale import cpu_description, extract_baseline

REPO = Path(__file__).resolve().parents[1]
BATCH = 10_000


def status_mb() -> dict[str, float]:
    """``VmRSS``, ``RssAnon``, ``RssFile`` and ``VmHWM`` of this process in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def words(vocab: int) -> np.ndarray:
    """``vocab`` distinct lowercase words of 3-12 letters (deterministic)."""
    rng = np.random.default_rng(7)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    lengths = rng.integers(3, 13, size=vocab)
    chars = letters[rng.integers(0, 26, size=int(lengths.sum()))].tobytes().decode()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    out = {chars[offsets[i] : offsets[i + 1]] for i in range(vocab)}
    return np.array(sorted(out))


def batches(n: int, table: np.ndarray):
    from haystack import Document

    p = 1.0 / np.arange(1, len(table) + 1)
    p /= p.sum()
    for start in range(0, n, BATCH):
        rng = np.random.default_rng(start)
        size = min(BATCH, n - start)
        lengths = rng.integers(40, 120, size=size)
        tokens = table[rng.choice(len(table), size=int(lengths.sum()), p=p)]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        yield [
            Document(
                id=f"p{start + i}",
                content=" ".join(tokens[offsets[i] : offsets[i + 1]]),
                meta={"title": f"title {(start + i) % 5000}"},
            )
            for i in range(size)
        ]


def trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def worker(args) -> dict:
    from spart.components.document_stores import FaissDocumentStore

    table = words(args.vocab)
    rng = np.random.default_rng(3)
    texts = [" ".join(table[rng.integers(0, 3000, size=3)]) for _ in range(50)]
    if args.phase != "write":
        del table
    trim()
    Path("/proc/self/clear_refs").write_text("5")  # restarts VmHWM: the peak counts from here
    base = status_mb()
    out: dict = {}

    def mark(name: str) -> None:
        trim()
        now = status_mb()
        out[f"{name}_anon_mb"] = round(now["RssAnon"] - base["RssAnon"], 1)
        out[f"{name}_file_mb"] = round(now["RssFile"] - base["RssFile"], 1)

    if args.phase == "write":
        store = FaissDocumentStore(path=args.dir, embedding_dim=8)
        start = time.perf_counter()
        for docs in batches(args.n, table):
            store.write_documents(docs)
        out["write_s"] = round(time.perf_counter() - start, 1)
        mark("written")
        store.save()
        mark("saved")
        out["terms"] = len(store._bm25.vocab)
    else:
        store = FaissDocumentStore.load(args.dir)
        for text in texts:
            store.bm25_retrieval(text, top_k=10)
        mark("reopened")
    out["peak_mb"] = round(status_mb()["VmHWM"] - base["VmRSS"], 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--vocab", type=int, nargs="+", default=[50_000, 2_000_000])
    parser.add_argument("--systems", nargs="+", default=["baseline", "current"])
    parser.add_argument("--baseline-commit", default="HEAD")
    parser.add_argument("--output", default=None, help="also write the results as JSON here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.vocab = args.vocab[0]
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0

    print(cpu_description(), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="spart-bm25-memory-") as tmp:
        tmp = Path(tmp)
        baseline_src = extract_baseline(args.baseline_commit, tmp) if "baseline" in args.systems else None
        for vocab in args.vocab:
            for system in args.systems:
                src = baseline_src if system == "baseline" else REPO / "src"
                env = {**os.environ, "PYTHONPATH": str(src), "HAYSTACK_TELEMETRY_ENABLED": "False"}
                row: dict = {"system": system, "n": args.n, "vocab": vocab}
                store_dir = tmp / f"{system}-{vocab}"
                for phase in ("write", "reopen"):
                    cmd = [sys.executable, __file__, "--worker", "--phase", phase, "--dir", str(store_dir)]
                    cmd += ["--n", str(args.n), "--vocab", str(vocab)]
                    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                    if proc.returncode != 0 or line is None:
                        raise SystemExit(f"{system} {phase} failed:\n{proc.stderr[-3000:]}")
                    row.update({f"{phase}_{k}" if k == "peak_mb" else k: v for k, v in json.loads(line[7:]).items()})
                rows.append(row)
                print(json.dumps(row), flush=True)
    keys = ["written_anon_mb", "saved_anon_mb", "saved_file_mb", "reopened_anon_mb", "reopened_file_mb"]
    print("\n| system | N | vocab | terms | " + " | ".join(keys) + " | write peak MB |")
    print("|---|---|---|---|" + "---|" * (len(keys) + 1))
    for r in rows:
        cells = [r["system"], r["n"], r["vocab"], r["terms"], *(r[k] for k in keys), r["write_peak_mb"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if args.output:
        Path(args.output).write_text(json.dumps({"cpu": cpu_description(), "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
