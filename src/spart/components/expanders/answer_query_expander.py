"""AnswerQueryExpander: a frozen LM answers the query from its own knowledge; the answer expands the query."""

from __future__ import annotations

from typing import Any

from haystack import component, default_from_dict, default_to_dict

from spart.teacher.loading import GENERATION_PRECISIONS
from spart.validation import check_positive_int

DEFAULT_INSTRUCTION = "Answer this question in a few words.\nQuestion: {question}"


def check_instruction(instruction: Any, name: str = "instruction") -> None:
    """Raise ``ValueError`` (naming ``name``) unless ``instruction`` is a string with a ``{question}`` slot."""
    if not isinstance(instruction, str) or "{question}" not in instruction:
        raise ValueError(f"{name} must contain '{{question}}', got {instruction!r}")


@component
class AnswerQueryExpander:
    """Writes an LM's closed-book answer to the query, for a text embedder's ``expansion`` input.

    Generation-augmented retrieval (GAR, Mao et al. 2021) appends generated answers to the query; HyDE (Gao et al.
    2022) embeds a generated "hypothetical document" with the document encoder and averages it with the query's
    embedding. spart does the latter with a short answer: connect ``expansion`` to
    ``SpiderTextEmbedder.expansion`` (or ``ARTTextEmbedder``'s), whose embedding becomes the mean of the query
    tower's embedding of the query and the passage tower's embedding of the answer. The LM's answer can be
    wrong; it only moves the query towards passages that talk about what it wrote, so it helps when the LM knows
    the domain (measured in docs/adaptation.md: wiki trivia with Qwen2.5-Coder-1.5B) and costs one greedy
    generation per query. No label is used.

    Deviations from the papers: GAR concatenates the generated text to the query for BM25 and samples several
    answers, titles and sentences from a fine-tuned BART; HyDE samples several documents from InstructGPT and
    averages them with the query. Here: one greedy answer from any instruct LM spart can load, averaged once.

    :param model: the LM: HF directory, cached hub id, or ``.gguf`` file; ``None`` = the packaged SmolLM2.
    :param gguf_file: GGUF file name inside the ``model`` directory.
    :param model_kind: ``"auto"``, ``"causal"`` or ``"seq2seq"``.
    :param instruction: the user message, with ``{question}`` where the query goes.
    :param max_new_tokens: longest answer.
    :param precision: as :class:`~spart.generation.QuestionGenerator`'s: ``"auto"`` (where bf16 is native,
        ``"int8-weights"`` on the CPU and ``"bf16-weights"`` on a GPU; else fp32), ``"fp32"``, ``"bf16"``
        (autocast), ``"bf16-weights"`` or ``"int8-weights"`` (bf16 weights plus an int8 copy of each linear weight
        for the decoded tokens: 2.7-3.6x bf16 weights on an AMD EPYC with native bf16, answers slightly different,
        wiki retrieval level; docs/benchmarks.md).
    :param device: ``"cpu"``, ``"cuda"``, ...; ``None`` = CUDA when available.

    Usage::

        from haystack import Pipeline
        from spart.components import AnswerQueryExpander, SpiderTextEmbedder

        pipe = Pipeline()
        pipe.add_component("expander", AnswerQueryExpander(model="path/to/instruct-lm"))
        pipe.add_component("text_embedder", SpiderTextEmbedder())
        pipe.connect("expander.expansion", "text_embedder.expansion")
        q = "Which African country was formerly known as Abyssinia?"
        out = pipe.run({"expander": {"query": q}, "text_embedder": {"text": q}})
    """

    def __init__(
        self,
        model: str | None = None,
        gguf_file: str | None = None,
        model_kind: str = "auto",
        instruction: str = DEFAULT_INSTRUCTION,
        max_new_tokens: int = 32,
        precision: str = "auto",
        device: str | None = None,
    ) -> None:
        if model_kind not in ("auto", "causal", "seq2seq"):
            raise ValueError(f"model_kind must be 'auto', 'causal' or 'seq2seq', got {model_kind!r}")
        if precision not in GENERATION_PRECISIONS:
            raise ValueError(f"precision must be one of {GENERATION_PRECISIONS}, got {precision!r}")
        check_instruction(instruction)
        check_positive_int(max_new_tokens, "max_new_tokens")
        self.model = model
        self.gguf_file = gguf_file
        self.model_kind = model_kind
        self.instruction = instruction
        self.max_new_tokens = max_new_tokens
        self.precision = precision
        self.device = device
        self._generator = None

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component to a dictionary.

        :returns: a dictionary with ``type`` and ``init_parameters``.
        """
        return default_to_dict(
            self,
            model=self.model,
            gguf_file=self.gguf_file,
            model_kind=self.model_kind,
            instruction=self.instruction,
            max_new_tokens=self.max_new_tokens,
            precision=self.precision,
            device=self.device,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerQueryExpander:
        """Deserialise the component from a dictionary made by :meth:`to_dict`.

        :param data: the dictionary.
        :returns: the component.
        """
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load the LM (once), through the question generator's loader and decoding loop."""
        if self._generator is not None:
            return
        from spart.generation.generator import QuestionGenerator

        generator = QuestionGenerator(
            self.model,
            gguf_file=self.gguf_file,
            model_kind=self.model_kind,
            max_new_tokens=self.max_new_tokens,
            temperature=0.0,
            batch_size=1,
            precision=self.precision,
            device=self.device,
        )
        generator.warm_up()
        self._generator = generator

    @component.output_types(expansion=str)
    def run(self, query: str) -> dict[str, str]:
        """Answer ``query`` with the LM (greedy decoding).

        :param query: the question.
        :returns: ``{"expansion": the answer, whitespace-trimmed}`` (may be empty: the embedder then embeds the
            plain query).
        :raises ValueError: if ``query`` is not a non-empty string.
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"AnswerQueryExpander needs a non-empty query string, got {query!r}")
        if self._generator is None:
            self.warm_up()
        message, prefix = self.prompt(query)
        reply = self._generator.reply([message], prefix=prefix)[0]
        return {"expansion": reply.strip()}

    def prompt(self, query: str) -> tuple[str, str]:
        """The user message for ``query`` and the instruction's head that every message shares (the generator runs
        it once and reuses its key/value cache).

        :param query: the question.
        :returns: ``(message, prefix)``.
        """
        return self.instruction.replace("{question}", query), self.instruction[: self.instruction.index("{question}")]
