"""Turn a ``--pipeline`` argument into a Haystack pipeline.

``spec`` is a spart pipeline name or a YAML path; ``spart.pipelines.load_pipeline`` resolves both when it
exists (with ``overrides``). Without it a YAML file is loaded with Haystack's own ``Pipeline.loads``.
A label may be put in front: ``"bm25=bm25_qa"`` evaluates ``bm25_qa`` under the label ``bm25``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def split_label(spec: str) -> tuple[str, str]:
    """``"label=spec"`` → ``(label, spec)``; a bare spec is labelled by its file stem or name."""
    if "=" in spec:
        label, _, rest = spec.partition("=")
        if label and rest and "/" not in label:
            return label, rest
    return Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec, spec


def load_any_pipeline(spec: str, **overrides: Any):
    """Load a pipeline by spart name or YAML path.

    :param spec: a spart pipeline name (``bm25_qa``...) or a YAML file.
    :param overrides: passed to ``spart.pipelines.load_pipeline``.
    :raises FileNotFoundError: for a missing YAML file.
    :raises ValueError: when the pipeline cannot be resolved or overrides cannot be applied.
    """
    try:
        from spart.pipelines import load_pipeline  # names, YAML files and overrides
    except ImportError:
        load_pipeline = None
    if load_pipeline is not None:
        return load_pipeline(spec, **overrides)
    path = Path(spec)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ValueError(
            f"unknown pipeline {spec!r}: give a YAML file (named pipelines need spart.pipelines.load_pipeline)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such pipeline file")
    if overrides:
        raise ValueError("pipeline overrides need spart.pipelines.load_pipeline")
    from haystack import Pipeline

    try:
        # spart's own components are trusted; anything else must be on Haystack's allowlist already.
        return Pipeline.loads(path.read_text(encoding="utf-8"), allowed_modules=["spart"])
    except Exception as error:  # Haystack raises several types for a bad file; report one clear error
        raise ValueError(f"{path}: cannot load pipeline: {error}") from error


def has_text_embedder(spec: str) -> bool:
    """Whether the pipeline file/name has a text embedder (so a ``model`` override applies to it)."""
    try:
        from spart.pipelines import read_pipeline_dict
    except ImportError:
        return True  # let the loader decide
    data = read_pipeline_dict(spec)
    return any(str(c.get("type", "")).endswith("TextEmbedder") for c in data["components"].values())


def text_embedder_model(spec: str) -> dict[str, Any] | None:
    """The dense model a pipeline's text embedder names, as ``{"model", "method", "passage_model"}``.

    ``None`` when the pipeline has no spart text embedder or its embedder names no model (it then follows the
    store it is given, e.g. the packaged pipelines). A pipeline written for an adapted model (``spart adapt``'s
    ``hybrid_qa.yaml``) names it, so ``spart eval`` can index the corpus with that model rather than the default.

    :raises ValueError: when two text embedders of one pipeline name different models.
    """
    try:
        from spart.pipelines import read_pipeline_dict
    except ImportError:
        return None
    from spart.components.embedders.methods import EMBEDDER_TYPES

    methods = {type_: method for (method, role), type_ in EMBEDDER_TYPES.items() if role == "text"}
    named = []
    for component in read_pipeline_dict(spec)["components"].values():
        params = component["init_parameters"]
        if component["type"] in methods and params.get("model"):
            named.append(
                {
                    "model": str(params["model"]),
                    "method": methods[component["type"]],
                    "passage_model": params.get("passage_model"),
                }
            )
    if any(entry != named[0] for entry in named[1:]):
        raise ValueError(f"{spec}: its text embedders name different models ({named}); evaluate them one at a time")
    return named[0] if named else None


def component_names(spec: str) -> set[str] | None:
    """The component names of a pipeline file/name (``None`` when they cannot be read without loading it)."""
    try:
        from spart.pipelines import read_pipeline_dict
    except ImportError:
        return None
    return set(read_pipeline_dict(spec)["components"])
