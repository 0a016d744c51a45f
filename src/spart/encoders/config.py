"""Configuration of a dual encoder, and the per-method presets (SPIDER, ART)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

POOLING_MODES = ("cls", "mean")
CONFIG_FILE = "spart.json"


@dataclass(frozen=True)
class DualEncoderConfig:
    """How a dual encoder turns text into vectors.

    :param shared: one tower for queries and passages (SPIDER) or two separate towers (ART, DPR).
    :param pooling: ``"cls"`` (SPIDER, ART, DPR) or ``"mean"`` (sentence-transformers models).
    :param normalize: L2-normalise embeddings (inner product becomes cosine).
    :param query_max_length: token budget of a query, special tokens included.
    :param passage_max_length: token budget of ``title [SEP] text``, special tokens included.
    :param lowercase: lowercase the input. ``None`` detects it: an uncased vocabulary whose tokenizer does not
        lowercase gets a lowercasing normaliser (forgetting this cost SPIDER a third of its accuracy, issue #8).
    """

    shared: bool = True
    pooling: str = "cls"
    normalize: bool = False
    query_max_length: int = 64
    passage_max_length: int = 240
    lowercase: bool | None = None

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        for name in ("query_max_length", "passage_max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 4:
                raise ValueError(f"{name} must be an integer >= 4, got {value!r}")

    def with_overrides(self, **overrides: Any) -> DualEncoderConfig:
        """A copy with every override that is not ``None`` applied; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown dual-encoder option(s): {sorted(unknown)}; known: {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DualEncoderConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, directory: Path) -> None:
        (Path(directory) / CONFIG_FILE).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


# The methods' own defaults. Loading a sentence-transformers directory keeps that model's pooling and
# normalisation unless the caller overrides them.
SPIDER_DEFAULTS = DualEncoderConfig(shared=True, pooling="cls", normalize=False)
ART_DEFAULTS = DualEncoderConfig(shared=False, pooling="cls", normalize=False)
