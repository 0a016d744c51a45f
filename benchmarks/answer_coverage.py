"""How high top-k accuracy can go on a DPR data set: the questions whose answer occurs in any passage of the corpus.

DPR's top-k accuracy counts a question as answered when a retrieved passage contains one of its answers
(:func:`spart.evaluation.answers.has_answer`, DPR's test). A question none of whose answers occurs anywhere in the
corpus is missed by every retriever, so the share of the other questions is the ceiling of top-k accuracy for any k.
This script scans the whole corpus once per split with that same test and prints the ceiling, how many passages
carry an answer per question (few means one passage to find; many often means a short or common answer that
matches by chance), and writes a JSON with the per-question counts.

Labels only describe the data here; nothing feeds training, selection or tuning.

Usage::

    python benchmarks/answer_coverage.py --dataset ../shared/data/wiki --split test --out answer-coverage-wiki.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def coverage(answers: list[list[str]], texts: list[str], match_type: str = "string") -> np.ndarray:
    """The number of passages in ``texts`` that contain an answer of each question (DPR's test).

    :param answers: each question's answers.
    :param texts: every passage text of the corpus (titles are not searched, as in DPR).
    :param match_type: ``"string"`` or ``"regex"``.
    :returns: an int array, one count per question.
    """
    from spart.evaluation.answers import has_answer

    return np.array([sum(has_answer(a, text, match_type) for text in texts) for a in answers], dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from spart.data import read_passages
    from spart.data.readers import read_dpr_qa

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, type=Path, help="DPR directory: passages.tsv + <name>-<split>.csv")
    parser.add_argument("--split", default="test")
    parser.add_argument("--match", choices=("string", "regex"), default="string")
    parser.add_argument("--out", type=Path, help="JSON with the per-question counts")
    args = parser.parse_args(argv)

    qa_files = sorted(args.dataset.glob(f"*-{args.split}.csv"))
    if len(qa_files) != 1:
        parser.error(f"expected one *-{args.split}.csv in {args.dataset}, found {[p.name for p in qa_files]}")
    start = time.perf_counter()
    texts = [p.text for p in read_passages(args.dataset / "passages.tsv")]
    pairs = list(read_dpr_qa(qa_files[0]))
    answers = [list(pair.answers) for pair in pairs]
    counts = np.array(
        [coverage([a], texts, args.match)[0] for a in tqdm(answers, desc="questions", unit="q", file=sys.stderr)]
    )
    covered = int((counts > 0).sum())
    summary = {
        "dataset": str(args.dataset),
        "split": args.split,
        "passages": len(texts),
        "questions": len(pairs),
        "with_an_answer_passage": covered,
        "ceiling_percent": round(100 * covered / len(pairs), 1),
        "answer_passages_median": float(np.median(counts)),
        "answer_passages_quartiles": [float(q) for q in np.percentile(counts, [25, 75])],
        "single_answer_passage": int((counts == 1).sum()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        summary["per_question"] = [
            {"question": pair.question, "answer_passages": int(n)} for pair, n in zip(pairs, counts, strict=True)
        ]
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
