"""Run every speed benchmark in turn with its documented default command (see docs/benchmarks.md).

Each benchmark prints its own ratios against a baseline measured in the same run. Benchmarks that need
../shared/data are skipped with a message when it is absent.

    python benchmarks/run_all.py            # all
    python benchmarks/run_all.py bm25 dense # a subset
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"

# name -> (script and arguments, needs ../shared/data)
BENCHMARKS = {
    "bm25": (["bench_bm25.py", "--scales", "1", "10", "--budget", "30"], True),
    "dense": (["bench_dense_search.py", "--scales", "1", "10", "--budget", "30"], True),
    "embedding": (["bench_embedding.py"], True),
    "int8-cosine": (["bench_int8_cosine.py", "--openvino"], True),
    "span-mining": (["bench_span_mining.py"], True),
    "grad-cache-memory": (["bench_grad_cache_memory.py"], False),
    "art-memory": (["bench_art_memory.py"], False),
    "train-dropout": (["bench_train_dropout.py"], False),
    "teacher": (["bench_teacher.py", "throughput"], True),
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {sorted(BENCHMARKS)}", file=sys.stderr)
        return 2
    failures = 0
    for name in names or list(BENCHMARKS):
        command, needs_shared = BENCHMARKS[name]
        if needs_shared and not SHARED.is_dir():
            print(f"== {name}: skipped, {SHARED} not found")
            continue
        print(f"== {name}: {' '.join(command)}", flush=True)
        failures += subprocess.call([sys.executable, str(HERE / command[0]), *command[1:]], cwd=HERE.parent) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
