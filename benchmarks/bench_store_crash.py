"""FaissDocumentStore under kill -9: a writer subprocess is SIGKILLed at a random moment, ``--trials`` times.

Each trial (see ``spart.components.document_stores.faiss.crash_check``) checks that every write that had
returned is present after reopening, that the write in flight is all-or-nothing, and that dense and BM25
results equal a rebuild from the database. Prints one line per trial and a summary; exits 1 on any failure.

Run (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_store_crash.py --trials 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--max-delay", type=float, default=3.0, help="kill within this many seconds of start")
    parser.add_argument("--first-seed", type=int, default=1000)
    args = parser.parse_args()

    from spart.components.document_stores.faiss.crash_check import run_trial

    failures, in_flight, done = 0, 0, 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spart-crash-") as tmp:
        for i in range(args.trials):
            seed = args.first_seed + i
            try:
                result = run_trial(Path(tmp) / "store", seed=seed, max_delay_s=args.max_delay)
            except AssertionError as error:
                failures += 1
                print(f"trial {i:3d} seed {seed}: FAILED {error}", flush=True)
                continue
            in_flight += result.in_flight
            done += result.done
            print(
                f"trial {i:3d} seed {seed}: killed after {result.seconds_to_kill:.2f} s, {result.done} operations "
                f"returned, one in flight: {result.in_flight}, {result.documents} documents: ok",
                flush=True,
            )
    print(
        f"{args.trials} trials in {time.perf_counter() - started:.0f} s: {failures} failed; kills inside an "
        f"operation: {in_flight}; operations returned before the kill: {done / max(args.trials, 1):.1f} on average"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
