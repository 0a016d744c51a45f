"""Benchmark recurring-span mining: the vectorised miner against the naive reference, on the shared corpora.

For each corpus it measures, each in a fresh subprocess (so peak RSS belongs to that run alone):

- ``fast-wN``: ``mine_spans_to_file`` over the whole corpus with N worker processes (this also writes the
  span file that training uses, to ``--out-dir``);
- ``base-wN`` (with ``--baseline-src``): the same with another checkout's ``src`` first on ``PYTHONPATH``,
  alternating with ``fast-wN`` run by run, so old and new share the machine's load; the ratios and whether
  both wrote the same span file are printed;
- ``naive`` and ``fast-subset``: the naive reference (:mod:`spart.training.spans.reference`) and the fast
  kernel (one process) on the same subset of whole documents (the first ``--subset-passages`` eligible
  passages), checking that both give identical clusters.

Throughput is passages read per second (all passages of the corpus, including those of skipped small
documents) and eligible passages per second (passages of documents that are actually mined). Peak memory is
``ru_maxrss`` of the measuring process plus its largest child. With ``--repeats N`` the whole-corpus rows
keep the least wall and the least CPU time of N runs. The report ends with cluster statistics.

Rerun from the repository root (about 15 s on 2 cores; ``SPART_SHARED_DATA`` defaults to ``../shared/data``;
the baseline, e.g. ``git worktree add ../spart-base <rev>``):

    nice -n 10 .venv/bin/python benchmarks/bench_span_mining.py --out-dir "$(mktemp -d)" \
        --repeats 3 --baseline-src ../spart-base/src
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("SPART_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CORPORA = {
    # name: (path, title separator). pydocs titles are "<page> — <section>": a page is the document.
    "wiki": (SHARED / "wiki" / "passages.tsv", None),
    "pydocs": (SHARED / "pydocs" / "corpus.jsonl", " — "),
}
WIKIPEDIA_PASSAGES = 21_015_324  # DPR's psgs_w100.tsv


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0  # Linux reports KiB; workers run concurrently, so own + largest child


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers, once joined
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _subset(corpus: Path, separator: str | None, passages: int):
    from spart.data import read_passages
    from spart.training.spans import SpanMiningConfig, iter_documents, select_passages

    config = SpanMiningConfig(title_separator=separator)
    docs, total = [], 0
    for key, group in iter_documents(read_passages(corpus), config):
        selected = select_passages(group, config)
        if selected is None:
            continue
        docs.append((key, [(p.id, p.text) for p in selected]))
        total += len(selected)
        if total >= passages:
            break
    return config, docs, total


def measure(kind: str, name: str, workers: int, subset_passages: int, out_dir: Path, stem: str) -> dict:
    """One measurement, run inside its own process (``stem``: the span file's name, before ``.jsonl.gz``)."""
    corpus, separator = CORPORA[name]
    if kind == "full":
        from spart.training.spans import SpanMiningConfig, mine_spans_to_file

        out = out_dir / (f"{stem}.jsonl.gz" if workers == 2 else f"{stem}.w{workers}.jsonl.gz")
        cpu = _cpu_seconds()
        start = time.perf_counter()
        stats = mine_spans_to_file(
            corpus, out, SpanMiningConfig(title_separator=separator), workers=workers, progress=False, overwrite=True
        )
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu
        if workers != 2:
            out.unlink()
            out.with_name(out.name + ".stats.json").unlink()
        return {
            "passages": stats.passages,
            "eligible_passages": stats.eligible_passages,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "peak_rss_mb": _peak_rss_mb(),
            "output": str(out) if workers == 2 else None,
        }
    from spart.training.spans import mine_documents
    from spart.training.spans.reference import naive_mine_document

    config, docs, total = _subset(corpus, separator, subset_passages)
    cpu = _cpu_seconds()
    start = time.perf_counter()
    if kind == "naive":
        clusters = [naive_mine_document(passages, config) for _, passages in docs]
    else:
        clusters = [d.clusters for d in mine_documents(docs, config)]
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu
    digest = json.dumps([[(c.span, c.occurrences) for c in doc] for doc in clusters])
    return {
        "passages": total,
        "eligible_passages": total,
        "documents": len(docs),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "clusters": sum(len(c) for c in clusters),
        "digest": hash(digest),
    }


def _run_child(
    kind: str, name: str, workers: int, subset: int, out_dir: Path, src: Path | None = None, stem: str | None = None
) -> dict:
    command = [sys.executable, __file__, "--child", kind, name, str(workers), str(subset), str(out_dir), stem or name]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if src is not None:  # another checkout's package first
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src.resolve()), env.get("PYTHONPATH")]))
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _best(runs: list[dict]) -> dict:
    """One row for repeated runs: the least wall and the least CPU time, the largest peak memory."""
    row = dict(runs[0])
    row["seconds"] = min(run["seconds"] for run in runs)
    row["cpu_seconds"] = min(run["cpu_seconds"] for run in runs)
    row["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    row["runs"] = len(runs)
    return row


def _same_spans(first: str, second: str) -> bool:
    import gzip

    with gzip.open(first, "rb") as a, gzip.open(second, "rb") as b:
        return a.read() == b.read()


def cluster_stats(path: Path, examples: int = 8) -> dict:
    from spart.training.spans import read_spans

    docs = clusters = occurrences = passages_with = 0
    distinct_passages = span_tokens = 0
    best: list[tuple[int, str, str]] = []
    for doc in read_spans(path):
        docs += 1
        for c in doc.clusters:
            clusters += 1
            occurrences += len(c.occurrences)
            n_passages = len(c.passage_ids)
            distinct_passages += n_passages
            span_tokens += c.occurrences[0][2] - c.occurrences[0][1]
            best.append((n_passages, c.span, doc.document))
        passages_with += len(doc.passage_ids)
    best.sort(reverse=True)
    spread = best[:: max(1, len(best) // examples)][:examples]
    return {
        "documents_with_clusters": docs,
        "clusters": clusters,
        "mean_occurrences": occurrences / max(clusters, 1),
        "mean_distinct_passages": distinct_passages / max(clusters, 1),
        "mean_span_tokens": span_tokens / max(clusters, 1),
        "clusters_per_document": clusters / max(docs, 1),
        "most_spread": [f"{s} ({d}, {n} passages)" for n, s, d in best[:5]],
        "examples": [f"{s} ({d}, {n} passages)" for n, s, d in spread],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--subset-passages", type=int, default=1500, help="passages for the naive comparison")
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parents[1] / "runs" / "spans", help="span files + JSON"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each whole-corpus row (best kept)")
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src/ to compare with (base-wN rows)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.baseline_src is not None and not (args.baseline_src / "spart" / "__init__.py").is_file():
        parser.error(f"--baseline-src {args.baseline_src}: no spart package there")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    idle_rss = _run_child("idle", "wiki", 1, 1, args.out_dir)["peak_rss_mb"]
    report = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(), "idle_rss_mb": idle_rss, "corpora": {}}
    for name in args.corpora:
        if not CORPORA[name][0].exists():
            print(f"skipping {name}: {CORPORA[name][0]} not found", file=sys.stderr)
            continue
        variants = [("fast", None, name)] + (
            [("base", args.baseline_src, f"{name}.baseline")] if args.baseline_src else []
        )
        runs: dict[str, list[dict]] = {}
        for workers in (1, 2):
            for _ in range(args.repeats):
                for label, src, stem in variants:
                    run = _run_child("full", name, workers, 0, args.out_dir, src, stem)
                    runs.setdefault(f"{label}-w{workers}", []).append(run)
        rows = {label: _best(label_runs) for label, label_runs in runs.items()}
        rows["naive"] = _run_child("naive", name, 1, args.subset_passages, args.out_dir)
        rows["fast-subset"] = _run_child("subset", name, 1, args.subset_passages, args.out_dir)
        for row in rows.values():
            row["passages_per_s"] = row["passages"] / row["seconds"]
            row["eligible_per_s"] = row["eligible_passages"] / row["seconds"]
            row["passages_per_cpu_s"] = row["passages"] / row["cpu_seconds"]
            row["eligible_per_cpu_s"] = row["eligible_passages"] / row["cpu_seconds"]
        full = rows["fast-w2"]
        # The machine is shared: wall time depends on other users' load, CPU time does not. With 2 idle
        # cores and 2 workers, wall time would be about CPU time / 2 (the reader overlaps the workers).
        idle_2core_eligible = 2 * full["eligible_per_cpu_s"]
        result = {
            "rows": rows,
            "naive_agrees": rows["naive"]["digest"] == rows["fast-subset"]["digest"],
            "speedup_vs_naive_same_subset_wall": rows["naive"]["seconds"] / rows["fast-subset"]["seconds"],
            "speedup_vs_naive_same_subset_cpu": rows["naive"]["cpu_seconds"] / rows["fast-subset"]["cpu_seconds"],
            "speedup_w2_vs_naive_wall": full["eligible_per_s"] / rows["naive"]["eligible_per_s"],
            "idle_2core_passages_per_s": 2 * full["passages_per_cpu_s"],
            "idle_2core_eligible_per_s": idle_2core_eligible,
            "extrapolated_21M_hours_measured_wall_eligible_rate": WIKIPEDIA_PASSAGES / full["eligible_per_s"] / 3600,
            "extrapolated_21M_hours_idle_2core_eligible_rate": WIKIPEDIA_PASSAGES / idle_2core_eligible / 3600,
            "stats": cluster_stats(Path(full["output"])),
        }
        if args.baseline_src:
            base_output = Path(rows["base-w2"]["output"])
            result["baseline"] = {
                "same_span_file": _same_spans(full["output"], str(base_output)),
                **{
                    f"w{w}_{what}_ratio": rows[f"base-w{w}"][key] / rows[f"fast-w{w}"][key]
                    for w in (1, 2)
                    for what, key in (("wall", "seconds"), ("cpu", "cpu_seconds"))
                },
            }
            base_output.unlink()
            base_output.with_name(base_output.name + ".stats.json").unlink()
        report["corpora"][name] = result
        print(f"\n== {name} ({CORPORA[name][0]})")
        print(
            f"{'run':<12} {'passages':>9} {'eligible':>9} {'wall s':>7} {'cpu s':>7} {'psg/s':>8} {'elig/s':>8} "
            f"{'psg/cpu-s':>9} {'elig/cpu-s':>10} {'peak MB':>7}"
        )
        for label, row in rows.items():
            print(
                f"{label:<12} {row['passages']:>9} {row['eligible_passages']:>9} {row['seconds']:>7.2f} "
                f"{row['cpu_seconds']:>7.2f} {row['passages_per_s']:>8.0f} {row['eligible_per_s']:>8.0f} "
                f"{row['passages_per_cpu_s']:>9.0f} {row['eligible_per_cpu_s']:>10.0f} {row['peak_rss_mb']:>7.0f}"
            )
        print(
            f"naive agrees: {result['naive_agrees']}; fast/naive on the same subset: "
            f"{result['speedup_vs_naive_same_subset_wall']:.1f}x wall, "
            f"{result['speedup_vs_naive_same_subset_cpu']:.1f}x CPU; "
            f"fast-w2 (whole corpus) vs naive, eligible psg/s wall: {result['speedup_w2_vs_naive_wall']:.1f}x"
        )
        print(
            f"idle 2-core estimate: {result['idle_2core_passages_per_s']:.0f} psg/s, "
            f"{result['idle_2core_eligible_per_s']:.0f} eligible psg/s; 21M passages (all eligible): "
            f"{result['extrapolated_21M_hours_idle_2core_eligible_rate']:.2f} h idle-2-core, "
            f"{result['extrapolated_21M_hours_measured_wall_eligible_rate']:.2f} h at the measured wall rate"
        )
        if args.baseline_src:
            base = result["baseline"]
            print(
                f"baseline / fast (best of {args.repeats}, alternating): 1 worker {base['w1_wall_ratio']:.2f}x wall, "
                f"{base['w1_cpu_ratio']:.2f}x CPU; 2 workers {base['w2_wall_ratio']:.2f}x wall, "
                f"{base['w2_cpu_ratio']:.2f}x CPU; same span file: {base['same_span_file']}"
            )
        print(json.dumps(result["stats"], indent=1, ensure_ascii=False))
    report["load_avg_end"] = os.getloadavg()
    print(
        f"\nidle interpreter RSS {idle_rss:.0f} MB; "
        f"load average start {report['load_avg_start']}, end {report['load_avg_end']}"
    )
    (args.out_dir / "bench_span_mining.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, name, workers, subset, out_dir, stem = sys.argv[2:8]
        if kind == "idle":
            import numpy  # noqa: F401  (the fixed cost every run pays)

            import spart.training.spans  # noqa: F401

            print(json.dumps({"peak_rss_mb": _peak_rss_mb()}))
        else:
            print(json.dumps(measure(kind, name, int(workers), int(subset), Path(out_dir), stem)))
        sys.exit(0)
    sys.exit(main())
