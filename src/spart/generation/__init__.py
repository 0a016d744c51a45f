"""Synthetic questions for a corpus: a frozen LM writes questions for sampled passages, a retriever keeps the
ones whose source passage it finds (round-trip filtering), and the survivors become a pseudo-labelled BEIR data
set (``pseudo-train`` / ``pseudo-dev``) that ART, few-shot training, ``spart audit`` and ``spart eval`` read.

This extends ART (Sachan et al. 2023), which trains on *real* questions, with generated ones, as InPars
(Bonifacio et al. 2022), Promptagator (Dai et al. 2022) and GPL (Wang et al. 2022) do.

Names are imported lazily so ``import spart.generation`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "GenerationPrompt": "spart.generation.prompts",
        "clean_question": "spart.generation.prompts",
        "QuestionGenerator": "spart.generation.generator",
        "sample_passages": "spart.generation.sampling",
        "source_ranks": "spart.generation.roundtrip",
        "write_pseudo_dataset": "spart.generation.pseudo_dataset",
        "GenerationSettings": "spart.generation.pipeline",
        "generate_questions": "spart.generation.pipeline",
        "StudentView": "spart.generation.pipeline",
    },
)

if TYPE_CHECKING:
    from spart.generation.generator import QuestionGenerator
    from spart.generation.pipeline import GenerationSettings, StudentView, generate_questions
    from spart.generation.prompts import GenerationPrompt, clean_question
    from spart.generation.pseudo_dataset import write_pseudo_dataset
    from spart.generation.roundtrip import source_ranks
    from spart.generation.sampling import sample_passages
