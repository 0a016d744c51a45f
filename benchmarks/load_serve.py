"""Bounded load test of `spart serve` on 127.0.0.1, against the same pipeline called in process.

    python benchmarks/load_serve.py --store stores/pydocs                      # hybrid_qa, 8 clients, 60 s each
    python benchmarks/load_serve.py --store stores/pydocs --seconds 5          # a smoke run

Starts `spart serve --store STORE --pipeline PIPELINE` on a free port of 127.0.0.1, waits for /status, then
CLIENTS threads each send POST /<pipeline>/run in a loop until SECONDS have passed (or MAX_REQUESTS were
sent), stops the server, and runs the same pipeline in this process with the same clients and duration.
Prints queries/s, p50/p95/max latency and the error count for both. Questions: --questions (one per line,
or a BEIR queries.jsonl) or a built-in list. Traffic goes to 127.0.0.1 only, and the run ends by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

QUESTIONS = [
    "who wrote hamlet?",
    "what is the moon?",
    "how do I read a file line by line?",
    "what is a decorator?",
    "when was sputnik launched?",
    "how does a gyroscope work?",
    "what is the nearest galaxy?",
    "how do I sort a dictionary by value?",
    "what does the with statement do?",
    "how are exceptions raised?",
]


def read_questions(path: str | None) -> list[str]:
    if path is None:
        return QUESTIONS
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [json.loads(line)["text"] if line.startswith("{") else line for line in lines]
    if not questions:
        raise SystemExit(f"{path}: no questions")
    return questions


def load(
    call: Callable[[str], bool], questions: list[str], clients: int, seconds: float, max_requests: int
) -> dict[str, float]:
    """Run ``call(question) -> ok`` from ``clients`` threads for ``seconds``; latency figures in ms."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(max_requests))

    def client(offset: int) -> None:
        nonlocal errors
        i = offset
        while time.monotonic() < deadline:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            try:
                ok = call(questions[i % len(questions)])
            except Exception:  # noqa: BLE001 - every failure counts as an error
                ok = False
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed * 1000)
                errors += not ok
            i += clients

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")

    return {
        "requests": len(latencies),
        "errors": errors,
        "qps": len(latencies) / wall,
        "p50": pct(0.5),
        "p95": pct(0.95),
        "max": latencies[-1] if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="store directory or postgresql://...#table")
    parser.add_argument("--pipeline", default="hybrid_qa")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=100_000, help="hard cap per phase")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--questions", help="questions file (one per line, or BEIR queries.jsonl)")
    args = parser.parse_args()
    if args.clients <= 0 or args.seconds <= 0 or args.max_requests <= 0:
        parser.error("--clients, --seconds and --max-requests must be positive")
    questions = read_questions(args.questions)

    import httpx

    from spart.serving.process import start_server, stop_server

    started = time.monotonic()
    process, base = start_server(["--store", args.store, "--pipeline", args.pipeline])
    print(f"spart serve answered /status after {time.monotonic() - started:.1f} s", file=sys.stderr)
    url = f"{base}/{args.pipeline}/run"
    try:
        with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=args.clients)) as http:
            served = load(
                lambda q: http.post(url, json={"query": q, "top_k": args.top_k}).status_code == 200,
                questions,
                args.clients,
                args.seconds,
                args.max_requests,
            )
    finally:
        stop_server(process)

    from spart.serving import SpartPipelineWrapper

    wrapper = SpartPipelineWrapper(args.pipeline, {"store": args.store})
    wrapper.setup()
    in_process = load(
        lambda q: bool(wrapper.ask(q, args.top_k)["results"]), questions, args.clients, args.seconds, args.max_requests
    )

    print(f"\n{args.pipeline} on {args.store}: {args.clients} clients, {args.seconds:g} s each, top_k {args.top_k}\n")
    print("| called | requests | errors | queries/s | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for label, r in (("spart serve (HTTP, 127.0.0.1)", served), ("in process", in_process)):
        print(
            f"| {label} | {r['requests']} | {r['errors']} | {r['qps']:.1f} | {r['p50']:.0f} | {r['p95']:.0f} "
            f"| {r['max']:.0f} |"
        )
    return 1 if served["errors"] or in_process["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
