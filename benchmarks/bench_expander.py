"""Query expander speed: answers/s of ``AnswerQueryExpander`` per LM precision and with or without the reused
prompt prefix, against fp32 without reuse (the baseline, measured in the same run), on the same trivia questions,
one question per call as a pipeline runs it.

For each ``--model``: fp32 weights (the baseline), ``"bf16"`` (autocast, linear weights held in bf16), bf16 weights,
each with the whole prompt run per question; then bf16 weights (``auto``'s choice where bf16 is native), ``"bf16"``
and fp32 with the key/value cache of the prompt's shared prefix (chat template + instruction) reused, as
``AnswerQueryExpander.run`` does; and ``"int8-weights"`` (an int8 copy of each linear weight for decoded tokens)
with the prefix reused. ``--only`` keeps the baseline and the named configurations.
Reports answers/s, the ratio to the baseline, the share of answers identical to the baseline's (greedy decoding)
and to bf16 weights' (for int8-weights), and the share that contain a gold answer string (DPR's ``has_answer``),
a rough check that nothing costs knowledge. Each precision loads its own copy of the model; one warm-up answer first.

Run alone on a quiet machine (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_expander.py --qa ../shared/data/wiki/trivia-test.csv \
        --model qwen1.5b=$MODELS/qwen2.5-coder-1.5b-instruct --questions 24 --out ../runs/expander-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIGS = (
    ("fp32", False),
    ("bf16", False),
    ("bf16-weights", False),
    ("bf16-weights", True),
    ("bf16", True),
    ("fp32", True),
    ("int8-weights", True),
)
BF16W = ("bf16-weights", True)  # auto's choice where bf16 is native: int8-weights' answers are compared with it


def answer(expander, question: str, reuse: bool) -> list[str]:
    """``AnswerQueryExpander.run``'s generation, with or without the prefix's cache reused."""
    message, prefix = expander.prompt(question)
    return expander._generator.reply([message], prefix=prefix if reuse else None)


def main(argv: list[str] | None = None) -> int:
    from bench_embedding import cpu_description

    from spart.components import AnswerQueryExpander
    from spart.data.readers import read_dpr_qa
    from spart.evaluation.answers import has_answer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", required=True, help="DPR question file (question TAB answers)")
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=MODEL")
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="JSON results")
    parser.add_argument(
        "--only",
        action="append",
        metavar="PRECISION[:reused]",
        help="only these configurations besides the fp32 baseline (e.g. bf16-weights:reused, int8-weights:reused)",
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    qa = list(read_dpr_qa(args.qa))[: args.questions]
    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['cpus']} CPUs), flags of interest: {' '.join(cpu['key_flags'])}")
    print(f"{len(qa)} questions from {Path(args.qa).name}, {args.threads} threads, batch 1")
    configs = CONFIGS
    if args.only:
        wanted = {(o.split(":")[0], o.endswith(":reused")) for o in args.only}
        unknown = wanted - set(CONFIGS)
        if unknown:
            parser.error(f"unknown configurations {sorted(unknown)}; known: {CONFIGS}")
        configs = (CONFIGS[0], *[c for c in CONFIGS[1:] if c in wanted])
    rows = []
    for spec in args.model:
        label, model = spec.split("=", 1)
        answers: dict[tuple[str, bool], list[str]] = {}
        seconds: dict[tuple[str, bool], float] = {}
        for precision in dict.fromkeys(p for p, _ in configs):
            expander = AnswerQueryExpander(model=model, max_new_tokens=args.max_new_tokens, precision=precision)
            expander.warm_up()
            for reuse in [r for p, r in configs if p == precision]:
                answer(expander, qa[0].question, reuse)  # warm-up
                start = time.perf_counter()
                replies = [answer(expander, q.question, reuse) for q in qa]
                seconds[precision, reuse] = time.perf_counter() - start
                answers[precision, reuse] = [r[0].strip() for r in replies]
            del expander
        for config in configs:
            got = answers[config]
            rows.append(
                {
                    "model": label,
                    "precision": config[0],
                    "prefix_reused": config[1],
                    "seconds": seconds[config],
                    "answers_per_s": len(qa) / seconds[config],
                    "ratio": seconds[CONFIGS[0]] / seconds[config],
                    "same_as_baseline": sum(a == b for a, b in zip(got, answers[CONFIGS[0]])) / len(qa),
                    "same_as_bf16_weights": (
                        sum(a == b for a, b in zip(got, answers[BF16W])) / len(qa) if BF16W in answers else None
                    ),
                    "has_answer": sum(has_answer(q.answers, a) for q, a in zip(qa, got)) / len(qa),
                }
            )
    header = ("model", "precision", "prefix", "answers/s", "vs base", "same", "same bf16w", "has answer")
    print("{:<12} {:<13} {:>6} {:>9} {:>8} {:>6} {:>10} {:>10}".format(*header))
    for r in rows:
        same_w = "-" if r["same_as_bf16_weights"] is None else f"{r['same_as_bf16_weights']:.0%}"
        print(
            f"{r['model']:<12} {r['precision']:<13} {'reused' if r['prefix_reused'] else 'no':>6} "
            f"{r['answers_per_s']:>9.3f} {r['ratio']:>7.2f}x {r['same_as_baseline']:>6.0%} {same_w:>10} "
            f"{r['has_answer']:>10.0%}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"cpu": cpu, "questions": len(qa), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
