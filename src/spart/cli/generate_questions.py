"""``spart generate-questions``: synthetic questions for a corpus, as a pseudo-labelled BEIR data set."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = (
    "Write one question per sampled passage with a frozen LM (causal or seq2seq, HF directory or GGUF), keep those "
    "whose source passage a dense retriever ranks in its top k (round-trip filter), and write a BEIR data set: "
    "corpus.jsonl, queries.jsonl, qrels/pseudo-train.tsv, qrels/pseudo-dev.tsv and pseudo-train-questions.txt. "
    "Resumable: rerun the same command after an interruption."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate-questions", help=DESCRIPTION.split(" (")[0], description=DESCRIPTION)
    parser.add_argument("corpus", help="DPR passages .tsv or BEIR corpus.jsonl / directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--model", default=None, help="LM directory or .gguf file (default: the packaged SmolLM2)")
    parser.add_argument("--gguf-file", default=None, help="GGUF file inside --model")
    parser.add_argument("--num-passages", type=int, default=1000, help="passages that get a question")
    parser.add_argument("--examples", default=None, help="real questions shown as style examples (questions only)")
    parser.add_argument("--num-examples", type=int, default=5, help="how many example questions the prompt shows")
    parser.add_argument("--instruction", default=None, help="replace the default request to the LM")
    parser.add_argument("--filter-model", default=None, help="dense model of the round-trip filter (default MiniLM)")
    parser.add_argument(
        "--student-passage-tokens",
        type=int,
        default=None,
        help="show the LM each passage cut to what --filter-model reads in this many passage tokens (default: whole)",
    )
    parser.add_argument("--filter-top-k", type=int, default=20, help="keep if the source ranks in this top k (0: all)")
    parser.add_argument("--dev-fraction", type=float, default=0.2, help="share of kept questions in pseudo-dev")
    parser.add_argument(
        "--max-dev", type=int, default=500, help="at most this many pseudo-dev questions (0: no cap); the rest train"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="passages per generate call")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest reply")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0: greedy)")
    parser.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass")
    parser.add_argument("--seed", type=int, default=0, help="sample, sampling and split seed")
    parser.add_argument("--overwrite", action="store_true", help="discard an earlier run with other settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def build_generator(args: argparse.Namespace):
    """The :class:`QuestionGenerator` the arguments describe."""
    import numpy as np

    from spart.generation import GenerationPrompt, QuestionGenerator

    examples: tuple[str, ...] = ()
    if args.examples:
        from spart.training.art_data import load_questions

        pool = load_questions(args.examples)
        picked = np.random.default_rng(args.seed).permutation(len(pool))[: args.num_examples]
        examples = tuple(pool[i] for i in sorted(picked))
    prompt_kwargs = {"examples": examples}
    if args.instruction:
        prompt_kwargs["instruction"] = args.instruction
    return QuestionGenerator(
        args.model,
        gguf_file=args.gguf_file,
        prompt=GenerationPrompt(**prompt_kwargs),
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        batch_size=args.batch_size,
    )


def run(args: argparse.Namespace) -> int:
    from spart.data import read_passages
    from spart.generation import GenerationSettings, generate_questions

    settings = GenerationSettings(
        num_passages=args.num_passages,
        seed=args.seed,
        filter_model=args.filter_model,
        filter_top_k=args.filter_top_k,
        dev_fraction=args.dev_fraction,
        max_dev_questions=args.max_dev or None,
        student_passage_tokens=args.student_passage_tokens,
    )
    generator = build_generator(args)
    passages = list(read_passages(args.corpus))
    stats = generate_questions(
        passages, args.out, generator, settings, progress=not args.no_progress, overwrite=args.overwrite
    )
    print(json.dumps(stats, indent=1))
    return 0
