"""Prompt templates for question-likelihood scoring.

The teacher reads a passage and is asked for the probability of the question. UPR and ART (Sachan et al.)
feed T0's encoder ``"Passage: {title} {text}. Please write a question based on this passage."`` and score
the decoder target ``"Question: {question}"`` (reference code: ``verbalizer_head="Passage: "``,
``verbalizer="Please write a question based on this passage."``; ART's decoder prefix ``"Question: "``).

For causal LMs the same words are used, joined by newlines so that the question starts a fresh line
(UPR's GPT variant concatenates the token ids with no separator; a newline gives a BPE tokenizer a clean
boundary, so tokenising the two halves separately gives the same ids as tokenising the joined string).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

SEQ2SEQ_PASSAGE_TEMPLATE = "Passage: {title} {text}. Please write a question based on this passage."
CAUSAL_PASSAGE_TEMPLATE = "Passage: {title} {text}\nPlease write a question based on this passage.\n"
CHAT_PASSAGE_TEMPLATE = "Passage: {title} {text}\n\nPlease write a question based on this passage."
QUESTION_TEMPLATE = "Question: {question}"

_RUN_OF_SPACES = re.compile(r" {2,}")


@dataclass(frozen=True)
class PromptTemplate:
    """How a (question, passage) pair is verbalised for the teacher.

    :param passage: the conditioning text; placeholders ``{title}`` and ``{text}``.
    :param question: the scored text; placeholder ``{question}``. Only these tokens (plus the end-of-sequence
        token when the scorer appends one) contribute to the score.
    """

    passage: str = SEQ2SEQ_PASSAGE_TEMPLATE
    question: str = QUESTION_TEMPLATE

    def __post_init__(self) -> None:
        if "{text}" not in self.passage:
            raise ValueError(f"passage template must contain '{{text}}': {self.passage!r}")
        if "{question}" not in self.question:
            raise ValueError(f"question template must contain '{{question}}': {self.question!r}")

    def render_passage(self, title: str, text: str) -> str:
        """Fill the passage template. An empty title would leave a double space; runs of spaces collapse to one."""
        rendered = self.passage.format(title=title or "", text=text)
        return _RUN_OF_SPACES.sub(" ", rendered)

    def render_question(self, question: str) -> str:
        """Fill the question template."""
        return self.question.format(question=question)

    def to_dict(self) -> dict[str, str]:
        """Plain-dict form (for component serialisation)."""
        return asdict(self)

    def digest(self) -> str:
        """A short stable hash of the template, part of the score-cache key."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def default_template(model_kind: str, use_chat_template: bool = False) -> PromptTemplate:
    """The default template for ``"seq2seq"`` or ``"causal"`` teachers (see module docstring)."""
    if model_kind == "seq2seq":
        return PromptTemplate(SEQ2SEQ_PASSAGE_TEMPLATE, QUESTION_TEMPLATE)
    if model_kind == "causal":
        passage = CHAT_PASSAGE_TEMPLATE if use_chat_template else CAUSAL_PASSAGE_TEMPLATE
        return PromptTemplate(passage, QUESTION_TEMPLATE)
    raise ValueError(f"model kind must be 'seq2seq' or 'causal', got {model_kind!r}")
