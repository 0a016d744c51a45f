"""Question generation throughput: questions/s of each generator LM on the same passages, as a ratio to the
packaged SmolLM2-135M-Instruct (the baseline, measured in the same run), with the share of replies that parse.

Run alone on a quiet machine (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_generation.py --corpus ../shared/data/pydocs/corpus.jsonl \
        --generator qwen=$MODELS/qwen2.5-coder-0.5b-instruct --passages 32 --batch-size 16

``--precision`` (default ``auto``) sets every generator's precision, e.g. ``bf16`` against ``bf16-weights``.
``--whole-prompt`` adds, for each generator, a row that runs every prompt whole (the same replies, without the
key/value cache of the prompts' shared start), as a baseline in the same run. ``--student-passage-tokens N`` adds a
row that shows each LM the passages cut to what the packaged MiniLM reads in N passage tokens (``spart adapt
--student-view``), against whole passages in the same run.
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


def main(argv: list[str] | None = None) -> int:
    from bench_embedding import cpu_description

    from spart.data import read_passages
    from spart.generation import QuestionGenerator, clean_question, sample_passages

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--generator", action="append", default=[], metavar="LABEL=MODEL")
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="auto", help="QuestionGenerator precision (auto, fp32, bf16, ...)")
    parser.add_argument("--whole-prompt", action="store_true", help="also time each LM running whole prompts")
    parser.add_argument(
        "--student-passage-tokens", type=int, help="also time passages cut to MiniLM's first N passage tokens"
    )
    parser.add_argument("--out", help="JSON results")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    passages = list(read_passages(args.corpus))
    chosen = [passages[i] for i in sample_passages(passages, args.passages, seed=0)]
    viewed = None
    if args.student_passage_tokens:
        from spart.generation import StudentView

        viewed = StudentView(None, args.student_passage_tokens)(chosen)
        words = sum(len(p.text.split()) for p in viewed) / sum(len(p.text.split()) for p in chosen)
        print(f"student view: {args.student_passage_tokens} MiniLM passage tokens keep {words:.0%} of the words")
    systems = [("smollm2 (baseline)", None)] + [tuple(g.split("=", 1)) for g in args.generator]
    cpu = cpu_description()
    print(f"CPU: {cpu['model']} ({cpu['cpus']} CPUs), flags of interest: {' '.join(cpu['key_flags'])}")
    rows = []
    for label, model in systems:
        gen = QuestionGenerator(
            model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, precision=args.precision
        )
        gen.warm_up()
        gen.generate(chosen[: min(2, len(chosen))], seed=99)  # warm-up call
        runs = [(label, "", lambda g=gen: g.generate(chosen, seed=0))]
        if args.whole_prompt:  # generate() without the prefix: every prompt run from its first token
            messages = [gen.prompt.user_message(p.title or "", p.text) for p in chosen]
            runs.append((label, "whole prompt", lambda g=gen, m=messages: g.reply(m, seed=0, cue="Question")))
        if viewed is not None:
            runs.append((label, "student view", lambda g=gen: g.generate(viewed, seed=0)))
        for name, variant, run in runs:
            start = time.perf_counter()
            replies = run()
            seconds = time.perf_counter() - start
            parsed = sum(clean_question(r)[0] is not None for r in replies)
            rows.append(
                {
                    "generator": f"{name} ({variant})" if variant else name,
                    "label": name,
                    "variant": variant,
                    "seconds": seconds,
                    "questions_per_s": len(chosen) / seconds,
                    "parsed": parsed / len(chosen),
                    "precision": gen.resolved_precision,
                    "replies": replies,
                }
            )
        del gen
    base = rows[0]["questions_per_s"]
    print(f"{'generator':<32} {'q/s':>7} {'vs SmolLM2':>10} {'parsed':>7}  same replies as whole prompt / speed")
    plain = {r["label"]: r for r in rows if not r["variant"]}
    whole = {r["label"]: r for r in rows if r["variant"] == "whole prompt"}
    for r in rows:
        r["ratio"] = r["questions_per_s"] / base
        same = ""
        if not r["variant"] and r["label"] in whole:
            ref = whole[r["label"]]["replies"]
            same = f"{sum(a == b for a, b in zip(r['replies'], ref)) / len(ref):.0%}"
            r["vs_whole_prompt"] = r["questions_per_s"] / whole[r["label"]]["questions_per_s"]
            same += f" ({r['vs_whole_prompt']:.2f}x)"
        if r["variant"] == "student view":
            r["vs_whole_passages"] = r["questions_per_s"] / plain[r["label"]]["questions_per_s"]
            same = f"{r['vs_whole_passages']:.2f}x whole passages"
        print(f"{r['generator']:<32} {r['questions_per_s']:>7.3f} {r['ratio']:>9.2f}x {r['parsed']:>7.0%}  {same}")
    if args.out:
        Path(args.out).write_text(json.dumps({"cpu": cpu, "passages": len(chosen), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
