"""A deterministic stand-in for the question-writing LM (tests of generation and ``spart adapt``)."""

from __future__ import annotations

from spart.data.passages import as_passage
from spart.generation.prompts import GenerationPrompt


class FakeGenerator:
    """Writes "What about <the passage's 2nd-4th words>?" (so the round trip can find the source); can crash after
    ``fail_after`` calls to simulate an interruption."""

    def __init__(self, batch_size: int = 4, fail_after: int | None = None, prompt: GenerationPrompt | None = None):
        self.batch_size, self.fail_after, self.calls = batch_size, fail_after, 0
        self.prompt = prompt or GenerationPrompt()
        self.warmed = False

    def warm_up(self) -> None:
        self.warmed = True

    def settings(self) -> dict:
        return {"fake": True, "batch_size": self.batch_size, "prompt": self.prompt.digest()}

    def generate(self, passages, seed: int = 0) -> list[str]:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        out = []
        for p in passages:
            words = as_passage(p).text.split()
            out.append(f"Question: What about {' '.join(words[1:4])} (seed {seed})?\nextra line")
        return out
