"""The registry's dataset factories: what each training method trains on, built from its config.

- :func:`contrastive_dataset` (``spider``, ``few-shot``): SPIDER recurring-span examples
  (:mod:`spart.training.spider_examples`) or labelled pairs with BM25 negatives
  (:mod:`spart.training.supervised_pairs`), as the config's ``data.kind`` says; several span corpora are
  joined with :class:`ConcatExamples`.
- :func:`art_dataset` (``art``): the training questions and the evidence corpus (:mod:`spart.training.art_data`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spart.training.art_data import ARTData
    from spart.training.config import ARTTrainingConfig, ContrastiveTrainingConfig


def contrastive_dataset(config: ContrastiveTrainingConfig) -> Any:
    """The examples named by ``config.data``: SPIDER recurring-span examples or labelled pairs."""
    data = config.data
    if data.kind == "pairs":
        from spart.training.supervised_pairs import SupervisedPairs

        if data.beir_dir is not None:
            return SupervisedPairs.from_beir(data.beir_dir, data.split, data.bm25_negatives)
        return SupervisedPairs.from_dpr_json(data.dpr_json, data.corpus, data.bm25_negatives)
    try:
        from spart.training import spider_examples
    except ImportError as error:
        raise ValueError(f"SPIDER examples are not available ({error})") from None
    parts = [
        spider_examples.open_spider_examples(corpus, spans, seed=config.seed, **data.options)
        for corpus, spans in data.sources()
    ]
    return parts[0] if len(parts) == 1 else ConcatExamples(parts)


def art_dataset(config: ARTTrainingConfig) -> ARTData:
    """The questions and evidence named by ``config`` (the first ``max_questions`` / ``max_evidence``)."""
    from spart.training.art_data import ARTData, Evidence, load_questions

    questions = load_questions(config.questions, config.max_questions)
    return ARTData(questions, Evidence.read(config.evidence, config.max_evidence))


class ConcatExamples:
    """Several example datasets as one index space; ``set_epoch`` reaches every part."""

    def __init__(self, parts: Sequence[Any]) -> None:
        if not parts:
            raise ValueError("no datasets to concatenate")
        self.parts = list(parts)
        self.offsets = [0]
        for part in self.parts:
            self.offsets.append(self.offsets[-1] + len(part))

    def __len__(self) -> int:
        return self.offsets[-1]

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = bisect.bisect_right(self.offsets, index) - 1
        return self.parts[part][index - self.offsets[part]]
