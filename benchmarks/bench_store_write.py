"""Small-batch write speed of FaissDocumentStore: this checkout against other commits, measured alternately.

Each round runs every system in a fresh subprocess (``src/spart`` of a commit extracted with ``git archive``, or
this checkout), which writes the same ``N`` synthetic passages (``bench_store_scale.batches``: Zipf words,
a title, random unit ``--dim`` embeddings) with one ``write_documents`` call into a fresh on-disk ``Flat``
store, ``--writes`` times after one warm-up write. Systems alternate within each round, so background load
hits them alike; the median and best docs/s over all writes are reported.

Run (from the repo root; ~1 minute)::

    nice -n 15 .venv/bin/python benchmarks/bench_store_write.py --n 2000 5000 --commits 77d04a8 HEAD
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_store_scale import cpu_description, extract_baseline

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, tempfile, time
sys.path.insert(0, {bench!r})
from bench_store_scale import batches
from spart.components.document_stores import FaissDocumentStore
docs = [d for b in batches({n}, {dim}, first={n}) for d in b]
rates = []
for _ in range({writes} + 1):
    store = FaissDocumentStore(path=tempfile.mkdtemp(dir={tmp!r}) + "/s", embedding_dim={dim})
    start = time.perf_counter()
    store.write_documents(docs)
    rates.append({n} / (time.perf_counter() - start))
print(json.dumps(rates[1:]))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--commits", nargs="*", default=["77d04a8"], help="systems besides this checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writes", type=int, default=3, help="timed writes per subprocess")
    args = parser.parse_args()
    print(cpu_description(), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="spart-store-write-") as tmp:
        systems = {}
        for commit in args.commits:
            into = Path(tmp) / f"src-{commit}"
            into.mkdir()
            systems[commit] = extract_baseline(commit, into)
        systems["checkout"] = REPO / "src"
        for n in args.n:
            rates: dict[str, list[float]] = {name: [] for name in systems}
            for _ in range(args.rounds):
                for name, src in systems.items():
                    env = {**os.environ, "PYTHONPATH": str(src), "HAYSTACK_TELEMETRY_ENABLED": "False"}
                    code = CHILD.format(
                        bench=str(Path(__file__).parent), n=n, dim=args.dim, writes=args.writes, tmp=tmp
                    )
                    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
                    if proc.returncode != 0:
                        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
                    rates[name] += json.loads(proc.stdout.strip().splitlines()[-1])
            for name, values in rates.items():
                rows.append({"system": name, "n": n, "median": statistics.median(values), "best": max(values)})
    print("\n| system | N | docs/s median | docs/s best |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['system']} | {r['n']:,} | {r['median']:,.0f} | {r['best']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
