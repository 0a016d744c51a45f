"""Document store at scale: spart's FaissDocumentStore vs the store before format 2, and Haystack's in-memory store.

Systems (each measured in its own subprocess, so RSS figures are its own):

* ``current``: ``spart.components.document_stores.FaissDocumentStore`` from this checkout (disk-backed);
* ``previous``: the same class at ``--baseline-commit`` (default 77d04a8, the snapshot format), extracted with
  ``git archive`` into a temporary directory and imported from there;
* ``inmemory``: Haystack's ``InMemoryDocumentStore`` (BM25 + embedding retrieval; no persistence), only up to
  ``--inmemory-max`` documents (it holds embeddings as Python floats).

Corpus: ``N`` synthetic passages (Zipf-distributed words from a 50k vocabulary, 40-120 words, a title) with
random unit ``--dim`` embeddings and ``meta.n = i % 1000``; generated batch by batch, never held whole.

Metrics per (system, N, factory), in two processes for the disk stores (one for the in-memory store):

* write process: write docs/s, ``save()`` time, RSS after writing, peak RSS, disk size;
* read process (the store reopened as a server would, so its RSS is the store's and not what generating the
  corpus left on the heap): reopen time, RSS after reopening and after the query runs, peak RSS, first BM25
  and dense query, BM25 and dense queries/s (top 10, one query per call), ``filter_documents(meta.n == 7)``,
  write-1-then-query latency for BM25 and dense (median of 5), RSS after those 10 writes and the ``save()``
  that checkpoints them, and (``current`` only) the same filter with a meta index on ``n``, with the index build
  time.

RSS is measured after ``gc.collect()`` and ``malloc_trim(0)``; after the query runs it is also split into private
memory (``RssAnon``) and mapped file pages (``RssFile``: the memory-mapped index files, page cache the kernel can
reclaim and share between processes).

Run (from the repo root; the full run takes hours and ~30 GB of disk at 1M x 768)::

    nice -n 10 .venv/bin/python benchmarks/bench_store_scale.py --sizes 100000 1000000 --dim 768 \\
        --factories Flat IVF1024,PQ64 --output bench_store_scale.json
    # smoke run:
    nice -n 10 .venv/bin/python benchmarks/bench_store_scale.py --sizes 2000 --dim 64 --factories Flat IVF16,PQ8
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VOCAB = 50_000
BATCH = 10_000
TRAIN_BATCH = 100_000  # first write of an IVF / PQ store: enough vectors to train on


# ------------------------------------------------------------------------------------------ corpus
def _words() -> np.ndarray:
    rng = np.random.default_rng(1234)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, size=rng.integers(3, 10))) for _ in range(VOCAB)])


def batches(n: int, dim: int, first: int = BATCH):
    """Yield lists of Haystack Documents for passages 0..n-1 (deterministic)."""
    from haystack import Document

    words = _words()
    zipf = 1.0 / np.arange(1, VOCAB + 1)
    zipf /= zipf.sum()
    start = 0
    while start < n:
        size = min(first if start == 0 else BATCH, n - start)
        rng = np.random.default_rng(start)
        emb = rng.standard_normal((size, dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        lengths = rng.integers(40, 120, size=size)
        tokens = rng.choice(VOCAB, size=int(lengths.sum()), p=zipf)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        docs = [
            Document(
                id=f"p{start + i}",
                content=" ".join(words[tokens[offsets[i] : offsets[i + 1]]]),
                meta={"n": (start + i) % 1000, "title": f"title {(start + i) % 5000}"},
                embedding=emb[i].tolist(),
            )
            for i in range(size)
        ]
        yield docs
        start += size


def queries(count: int, dim: int, seed: int = 99) -> tuple[list[str], np.ndarray]:
    words = _words()
    rng = np.random.default_rng(seed)
    texts = [" ".join(words[rng.integers(0, 2000, size=3)]) for _ in range(count)]
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    return texts, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------ measuring
def rss_mb() -> float:
    """Resident set size after returning freed heap pages to the OS (so the generated batches do not count)."""
    import ctypes

    import psutil

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return psutil.Process().memory_info().rss / 2**20


def rss_split_mb() -> dict:
    """``RssAnon`` (private heap) and ``RssFile`` (mapped file pages: reclaimable page cache) in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20 if path.exists() else 0.0


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def rate(fn, items, budget_s: float) -> float:
    n, start = 0, time.perf_counter()
    while n < len(items):
        fn(items[n])
        n += 1
        if time.perf_counter() - start > budget_s:
            break
    return n / (time.perf_counter() - start)


def open_store(system: str, directory: Path, dim: int, factory: str, create: bool):
    """``(store, bm25, dense)`` for ``system``: a new in-memory store, or the disk store at ``directory`` (new
    with ``create``, else reopened); ``bm25(text)`` and ``dense(vector)`` return the top 10."""
    if system == "inmemory":
        from haystack.document_stores.in_memory import InMemoryDocumentStore

        store = InMemoryDocumentStore(embedding_similarity_function="dot_product")
        as_query = np.ndarray.tolist  # it takes embeddings as lists only
    else:
        from spart.components.document_stores import FaissDocumentStore

        if create:
            store = FaissDocumentStore(path=str(directory), embedding_dim=dim, factory=factory, nprobe=16)
        else:
            store = FaissDocumentStore.load(directory)
        as_query = np.asarray

    def bm25(q, k=10):
        return store.bm25_retrieval(q, top_k=k)

    def dense(v, k=10):
        return store.embedding_retrieval(as_query(v), top_k=k)

    return store, bm25, dense


def write_phase(args, store, result: dict) -> None:
    trains = args.factory != "Flat"
    written, write_s = 0, 0.0
    for docs in batches(args.n, args.dim, first=TRAIN_BATCH if trains else BATCH):
        seconds, _ = timed(lambda docs=docs: store.write_documents(docs))
        write_s += seconds
        written += len(docs)
        del docs
    result["write_docs_per_s"] = written / write_s
    if args.system != "inmemory":
        result["save_s"], _ = timed(store.save)
    result["rss_after_write_mb"] = rss_mb()
    result["disk_mb"] = disk_mb(Path(args.dir))


def read_phase(args, store, bm25, dense, result: dict) -> None:
    n, dim = args.n, args.dim
    texts, vectors = queries(200, dim)
    result["first_bm25_query_s"], _ = timed(lambda: bm25(texts[0]))
    result["first_dense_query_s"], _ = timed(lambda: dense(vectors[0]))
    result["bm25_qps"] = rate(bm25, texts, args.budget)
    result["dense_qps"] = rate(dense, vectors, args.budget)
    result["rss_after_queries_mb"] = rss_mb()
    split = rss_split_mb()
    result["anon_after_queries_mb"], result["file_after_queries_mb"] = split.get("RssAnon"), split.get("RssFile")
    flt = {"field": "meta.n", "operator": "==", "value": 7}
    result["filter_s"], found = timed(lambda: store.filter_documents(flt))
    expected = len(range(7, n, 1000))
    assert len(found) == expected, f"filtered query returned {len(found)} documents, expected {expected}"
    del found

    from haystack import Document

    bm25_lat, dense_lat = [], []
    for i in range(5):
        doc = Document(id=f"new{i}", content=f"{texts[i]} fresh words", meta={"n": 1}, embedding=vectors[i].tolist())
        bm25_lat.append(timed(lambda doc=doc, i=i: (store.write_documents([doc]), bm25(texts[i])))[0])
        doc2 = Document(id=f"new-dense{i}", content="x", meta={"n": 1}, embedding=vectors[i].tolist())
        dense_lat.append(timed(lambda doc2=doc2, i=i: (store.write_documents([doc2]), dense(vectors[i])))[0])
    result["write1_then_bm25_ms"] = 1000 * statistics.median(bm25_lat)
    result["write1_then_dense_ms"] = 1000 * statistics.median(dense_lat)
    split = rss_split_mb()
    result["anon_after_writes_mb"], result["file_after_writes_mb"] = split.get("RssAnon"), split.get("RssFile")
    if hasattr(store, "save"):
        result["save_after_writes_s"], _ = timed(store.save)  # a checkpoint of the 10 writes above
    if args.system == "current":
        from spart.components.document_stores import FaissDocumentStore

        store.close()
        del store
        gc.collect()
        result["meta_index_build_s"], store = timed(lambda: FaissDocumentStore.load(args.dir, meta_index=["n"]))
        result["filter_indexed_s"], _ = timed(lambda: store.filter_documents(flt))
        result["filter_indexed_count_s"], _ = timed(lambda: store.count_documents_by_filter(flt))
        store.close()


def worker(args) -> dict:
    """One phase of one system in this process; returns its metrics.

    ``write``: write the corpus (and ``save()``); ``read``: reopen the store in a fresh process (as a server
    would) and query it, so its RSS is the store's, not what generating the corpus left on the heap. The
    in-memory store has no persistence: both phases run in one process (``all``)."""
    directory = Path(args.dir)
    result: dict = {"system": args.system, "n": args.n, "dim": args.dim, "factory": args.factory}
    if args.phase in ("write", "all"):
        store, bm25, dense = open_store(args.system, directory, args.dim, args.factory, create=True)
        write_phase(args, store, result)
        if args.phase == "all":
            read_phase(args, store, bm25, dense, result)
        elif hasattr(store, "close"):
            store.close()
        result["peak_rss_write_mb"] = peak_rss_mb()
        return result
    from spart.components.document_stores import FaissDocumentStore  # noqa: F401  (imports are not reopen time)

    result["rss_before_open_mb"] = rss_mb()
    result["reopen_s"], (store, bm25, dense) = timed(
        lambda: open_store(args.system, directory, args.dim, args.factory, create=False)
    )
    result["rss_after_reopen_mb"] = rss_mb()
    read_phase(args, store, bm25, dense, result)
    result["peak_rss_read_mb"] = peak_rss_mb()
    return result


# ------------------------------------------------------------------------------------------ driver
def extract_baseline(commit: str, into: Path) -> Path:
    """``src/spart`` of ``commit`` (via ``git archive``) under ``into``; returns the ``src`` directory."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src/spart"], cwd=REPO, check=True, capture_output=True
    ).stdout
    tar_path = into / "baseline.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def cpu_description() -> str:
    model, flags = "unknown CPU", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = sorted(f for f in have if f in ("avx2", "fma") or f.startswith(("avx512", "amx")))
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, flags: {' '.join(flags) or 'n/a'}"


def save(output: str | None, results: list[dict]) -> None:
    """Rewrite the JSON report (atomically), so a long run that dies keeps what it measured."""
    if output:
        tmp = Path(output + ".tmp")
        tmp.write_text(json.dumps({"cpu": cpu_description(), "results": results}, indent=1))
        os.replace(tmp, output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--factories", nargs="+", default=["Flat", "IVF1024,PQ64"])
    parser.add_argument("--systems", nargs="+", default=["current", "previous", "inmemory"])
    parser.add_argument("--baseline-commit", default="77d04a8")
    parser.add_argument("--inmemory-max", type=int, default=100_000)
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per throughput measurement")
    parser.add_argument("--workdir", default=None, help="where stores are written (default: a temp directory)")
    parser.add_argument(
        "--output", default=None, help="also write the results as JSON here (rewritten after every measurement)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per measurement subprocess")
    # internal: one measurement in a subprocess
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--factory", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["write", "read", "all"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0

    print(cpu_description(), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="spart-store-scale-", dir=args.workdir) as tmp:
        tmp = Path(tmp)
        baseline_src = extract_baseline(args.baseline_commit, tmp) if "previous" in args.systems else None
        for n in args.sizes:
            for factory in args.factories:
                for system in args.systems:
                    if system == "inmemory" and (n > args.inmemory_max or factory != args.factories[0]):
                        continue  # exact search only, and only where it fits in memory
                    src = baseline_src if system == "previous" else REPO / "src"
                    env = {**os.environ, "PYTHONPATH": str(src), "HAYSTACK_TELEMETRY_ENABLED": "False"}
                    store_dir = tmp / f"{system}-{n}-{factory.replace(',', '_')}"
                    print(f"== {system} N={n} {factory}", flush=True)
                    result = {}
                    for phase in ["all"] if system == "inmemory" else ["write", "read"]:
                        cmd = [sys.executable, __file__, "--worker", "--phase", phase, "--system", system]
                        cmd += ["--n", str(n), "--dim", str(args.dim), "--factory", factory]
                        cmd += ["--dir", str(store_dir), "--budget", str(args.budget)]
                        error = None
                        try:
                            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
                            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                            if proc.returncode != 0 or line is None:
                                error = proc.stderr[-2000:] or f"exit code {proc.returncode}"
                        except subprocess.TimeoutExpired:
                            error = f"{phase}: no result within {args.timeout:g} s"
                        if error is not None:
                            print(f"   {phase} failed: {error.strip().splitlines()[-1:]}", flush=True)
                            result = {**result, "system": system, "n": n, "factory": factory, "error": error}
                            break
                        result.update(json.loads(line[len("RESULT ") :]))
                    results.append(result)
                    save(args.output, results)
                    print(
                        "   "
                        + ", ".join(
                            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in result.items()
                            if k not in ("system", "n", "factory", "error")
                        ),
                        flush=True,
                    )
                    shutil.rmtree(store_dir, ignore_errors=True)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
