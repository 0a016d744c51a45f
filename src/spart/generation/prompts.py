"""The question-writing prompt and the clean-up of what the LM writes back.

Promptagator conditions on a few (passage, question) examples; without labelled pairs spart shows the LM real
*questions only* (the user's own questions, when there are some), which carries their style and vocabulary and
no relevance label.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

DEFAULT_INSTRUCTION = (
    "Write one question that a user could ask and that this passage answers. "
    "The question must make sense without seeing the passage. Reply with the question only."
)
_PREFIX = re.compile(r"^\s*(?:[-*•]\s*|\d+[.)]\s*)?(?:(?:question\s*\d*|q)\s*[:.-]\s*)?", re.IGNORECASE)
_QUOTES = "\"'`“”‘’"
_REFERS_TO_SOURCE = re.compile(
    r"\b(?:(?:the|this|given|above) (?:passage|excerpt|snippet)|(?:this|given|above) (?:text|document))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class GenerationPrompt:
    """What the LM is asked.

    :param instruction: the request, placed after the passage.
    :param examples: real questions shown as style examples (questions only; never paired with passages).
    :param max_passage_words: the passage text is cut to this many words (the title is always kept).
    """

    instruction: str = DEFAULT_INSTRUCTION
    examples: tuple[str, ...] = field(default_factory=tuple)
    max_passage_words: int = 160

    def __post_init__(self) -> None:
        if not self.instruction.strip():
            raise ValueError("the generation instruction is empty")
        if self.max_passage_words <= 0:
            raise ValueError(f"max_passage_words must be positive, got {self.max_passage_words}")
        object.__setattr__(self, "examples", tuple(q.strip() for q in self.examples if q and q.strip()))

    def message_prefix(self) -> str:
        """The text every :meth:`user_message` starts with (the style examples, then ``"Passage:"``): what the
        prompts of a batch share, so a causal LM runs it once (:meth:`QuestionGenerator.reply`'s ``prefix``)."""
        examples = "\n".join(f"- {q}" for q in self.examples)
        return (f"Examples of questions users ask:\n{examples}\n\n" if self.examples else "") + "Passage:\n"

    def user_message(self, title: str, text: str) -> str:
        """The request for one passage (a chat turn, or the whole prompt of a seq2seq model)."""
        words = text.split()
        body = " ".join(words[: self.max_passage_words]) + (" ..." if len(words) > self.max_passage_words else "")
        passage = f"{title}\n{body}" if title else body
        return f"{self.message_prefix()}{passage}\n\n{self.instruction}"

    def digest(self) -> str:
        """A short hash of everything that changes the prompt (part of a run's settings)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def clean_question(raw: str, min_words: int = 3, max_words: int = 40) -> tuple[str | None, str]:
    """The question in an LM's reply, or ``None`` and why not.

    The first non-empty line is taken, a ``Question:`` / ``Q:`` / list prefix and surrounding quotes are removed,
    and the text is cut after its first ``?``. A reply without ``?`` or with too few or too many words is
    rejected.

    :returns: ``(question, "ok")`` or ``(None, reason)``.
    """
    line = next((x.strip() for x in raw.splitlines() if x.strip()), "")
    line = _PREFIX.sub("", line).strip().strip(_QUOTES).strip()
    if "?" not in line:
        return None, "no question mark"
    question = line[: line.index("?") + 1]
    head, sep, tail = question.rpartition(": ")
    if sep and len(head.split()) <= 8 and len(tail.split()) >= min_words:  # "A user might ask: How ...?"
        question = tail
    question = question.strip().strip(_QUOTES).strip()
    n = len(question.split())
    if n < min_words:
        return None, "too short"
    if n > max_words:
        return None, "too long"
    if _REFERS_TO_SOURCE.search(question):
        return None, "refers to the passage"
    return question, "ok"
