"""Load spart's ready-made YAML pipelines (or your own) with a store, a model and a few settings filled in.

Haystack 3.x refuses to deserialise classes outside its own packages unless the caller allows them
(``haystack.core.serialization_security``). :func:`load_pipeline` allows ``spart`` for its own call only
(``Pipeline.from_dict(..., allowed_modules=["spart"])``); nothing process-wide is changed. To load a spart
YAML with plain Haystack, opt in the same way: ``Pipeline.loads(text, allowed_modules=["spart"])``, or
``haystack.core.serialization.allow_deserialization_module("spart")`` once per process, or the environment
variable ``HAYSTACK_DESERIALIZATION_ALLOWLIST=spart``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spart.components.embedders.methods import METHODS, embedder_type
from spart.fusion import FUSION_MODES
from spart.pipelines.build import read_build_info, text_embedder_spec
from spart.pipelines.pgvector import (
    configure_pgvector_stores,
    connect_pgvector_stores,
    is_database_url,
)
from spart.pipelines.running import output_component
from spart.validation import check_top_k

if TYPE_CHECKING:
    from haystack import Pipeline

logger = logging.getLogger(__name__)

PIPELINES_DIR = Path(__file__).resolve().parent
ALLOWED_MODULES = ["spart"]

STORE_TYPE = "spart.components.document_stores.faiss.document_store.FaissDocumentStore"
# The class path pipelines were serialised with before the store became a package; still accepted.
LEGACY_STORE_TYPE = "spart.components.document_stores.faiss_document_store.FaissDocumentStore"
FUSER_TYPE = "spart.components.fusers.hybrid_score_fuser.HybridScoreFuser"
# load_pipeline's overrides that configure_pipeline_dict applies to the dictionary (top_k goes to the built pipeline)
DICT_OVERRIDES = ("store", "model", "passage_model", "method", "device", "precision", "fusion", "weights", "components")


def available_pipelines() -> list[str]:
    """Names of the packaged pipelines (``bm25_qa``, ``dense_qa``, ``hybrid_qa``, ...)."""
    return sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml"))


def pipeline_path(name_or_path: str | os.PathLike) -> Path:
    """The YAML file for a packaged pipeline name or a path.

    :raises FileNotFoundError: for a path that does not exist or an unknown name.
    """
    text = os.fspath(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix in (".yaml", ".yml") or os.sep in text or candidate.exists():
        if not candidate.is_file():
            raise FileNotFoundError(f"pipeline file not found: {candidate}")
        return candidate
    packaged = PIPELINES_DIR / f"{text}.yaml"
    if not packaged.is_file():
        raise FileNotFoundError(f"unknown pipeline {text!r}; packaged pipelines: {', '.join(available_pipelines())}")
    return packaged


def read_pipeline_dict(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Parse a pipeline YAML into the dictionary ``Pipeline.from_dict`` takes (nothing is instantiated).

    :raises ValueError: on invalid YAML or a document that is not a pipeline (no ``components`` mapping).
    """
    from haystack.marshal import YamlMarshaller

    path = pipeline_path(name_or_path)
    try:
        data = YamlMarshaller().unmarshal(path.read_text(encoding="utf-8"))
    except Exception as error:  # yaml.YAMLError and the marshaller's own wrappers
        raise ValueError(f"{path}: invalid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("components"), dict) or not data["components"]:
        raise ValueError(f"{path}: not a pipeline definition (expected a non-empty 'components' mapping)")
    for name, spec in data["components"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise ValueError(f"{path}: component {name!r} needs a 'type' and 'init_parameters'")
        if not isinstance(spec.setdefault("init_parameters", {}), dict):
            raise ValueError(f"{path}: component {name!r}: init_parameters must be a mapping")
    if not isinstance(data.setdefault("connections", []), list):
        raise ValueError(f"{path}: 'connections' must be a list")
    return data


def load_pipeline(
    name_or_path: str | os.PathLike,
    *,
    store: str | os.PathLike | None = None,
    model: str | None = None,
    passage_model: str | None = None,
    method: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    top_k: int | None = None,
    fusion: str | None = None,
    weights: Sequence[float] | None = None,
    components: dict[str, dict[str, Any]] | None = None,
) -> Pipeline:
    """Load a packaged pipeline by name (``"bm25_qa"``, ``"dense_qa"``, ``"hybrid_qa"``) or a YAML path.

    Every override is optional; ``None`` keeps the YAML's value.

    :param store: the `FaissDocumentStore` directory every retriever searches (its saved ``embedding_dim`` and
        ``factory`` are used), or for a ``*_pgvector`` pipeline a PostgreSQL URL ``postgresql://...#table``.
        If it was built by ``spart index``/``spart demo`` and neither the YAML nor the
        call names a model, the text embedder becomes the one the passages were embedded with (method, model,
        pooling...; read from the store's ``spart-build.json``).
    :param model: model location for every text embedder.
    :param passage_model: passage-tower location for every text embedder (two-tower models).
    :param method: ``"spider"`` or ``"art"``: which text embedder class to use.
    :param device: device of every embedder (``"auto"``, ``"cpu"``, ``"cuda:0"``...).
    :param precision: precision of every embedder (``"auto"``, ``"fp32"``, ``"bf16"``).
    :param top_k: number of documents the pipeline returns: set on its output component
        (:func:`spart.pipelines.running.output_component`: the fuser in ``hybrid_qa``, the ranker in the
        rerank pipelines, the retriever otherwise), unless ``components`` sets that component's ``top_k``.
    :param fusion: fusion mode of every `HybridScoreFuser` (see :data:`spart.fusion.FUSION_MODES`).
    :param weights: fusion weights of every `HybridScoreFuser`, one per input list.
    :param components: ``{component_name: {init_parameter: value}}``, applied last.
    :returns: the pipeline (components are warmed up by Haystack on the first run).
    :raises FileNotFoundError: unknown pipeline, missing YAML, or missing store directory.
    :raises ValueError: invalid YAML, no store given where the YAML has none, bad override.
    """
    from haystack import Pipeline
    from haystack.core.errors import DeserializationError, PipelineError

    top_k = check_top_k(top_k, allow_none=True)
    data = read_pipeline_dict(name_or_path)
    configured = configure_pipeline_dict(
        data,
        store=store,
        model=model,
        passage_model=passage_model,
        method=method,
        device=device,
        precision=precision,
        fusion=fusion,
        weights=weights,
        components=components,
    )
    try:
        pipeline = Pipeline.from_dict(configured, allowed_modules=ALLOWED_MODULES)
    except (DeserializationError, PipelineError, TypeError) as error:
        cause = f" ({error.__cause__})" if error.__cause__ else ""
        raise ValueError(f"cannot build pipeline {os.fspath(name_or_path)!r}: {error}{cause}") from error
    connect_pgvector_stores(pipeline, os.fspath(store) if is_database_url(store) else None)
    if top_k is not None:
        _set_final_top_k(pipeline, top_k, components or {})
    return pipeline


def _set_final_top_k(pipeline: Pipeline, top_k: int, components: dict[str, dict[str, Any]]) -> None:
    """Set ``top_k`` on the output component (the one the runner gives ``top_k``), unless ``components`` did."""
    final = output_component(pipeline)
    if "top_k" in components.get(final, {}):
        return  # the explicit component override is applied last
    instance = pipeline.get_component(final)
    if not hasattr(instance, "top_k"):
        raise ValueError(f"top_k given, but the output component {final!r} has no top_k setting")
    instance.top_k = top_k


def configure_pipeline_dict(data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Apply :func:`load_pipeline`'s overrides to a pipeline dictionary (a modified copy is returned).

    ``top_k`` is not one of them here: :func:`load_pipeline` sets it on the built pipeline's output component.

    :raises ValueError: for an override :func:`load_pipeline` does not take, or one that does not apply.
    """
    unknown = sorted(set(overrides) - set(DICT_OVERRIDES))
    if unknown:
        raise ValueError(f"unknown pipeline overrides {unknown}; the pipeline dictionary takes {list(DICT_OVERRIDES)}")
    data = copy.deepcopy(data)
    specs: dict[str, dict[str, Any]] = data["components"]
    store = overrides.get("store")
    _configure_stores(specs, store)
    _configure_text_embedders(specs, store, overrides)

    if overrides.get("fusion") is not None or overrides.get("weights") is not None:
        fusers = [spec for spec in specs.values() if spec["type"] == FUSER_TYPE]
        if not fusers:
            raise ValueError("fusion/weights given, but this pipeline has no HybridScoreFuser")
        if overrides.get("fusion") is not None and overrides["fusion"] not in FUSION_MODES:
            raise ValueError(f"unknown fusion mode {overrides['fusion']!r}; choose one of {FUSION_MODES}")
        for spec in fusers:
            if overrides.get("fusion") is not None:
                spec["init_parameters"]["mode"] = overrides["fusion"]
            if overrides.get("weights") is not None:
                spec["init_parameters"]["weights"] = [float(w) for w in overrides["weights"]]

    for name, params in (overrides.get("components") or {}).items():
        if name not in specs:
            raise ValueError(f"no component named {name!r} in this pipeline; it has {sorted(specs)}")
        if not isinstance(params, dict):
            raise ValueError(f"overrides for component {name!r} must be a mapping of init parameters")
        specs[name]["init_parameters"].update(params)
    return data


def _store_specs(specs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for spec in specs.values():
        nested = spec["init_parameters"].get("document_store")
        # Identity, not equality: YAML anchors make one dict, a dumped pipeline has equal but separate dicts.
        if (
            isinstance(nested, dict)
            and nested.get("type") in (STORE_TYPE, LEGACY_STORE_TYPE)
            and all(nested is not f for f in found)
        ):
            found.append(nested)
    return found


def _configure_stores(specs: dict[str, dict[str, Any]], store: str | os.PathLike | None) -> None:
    url = os.fspath(store) if is_database_url(store) else None
    if configure_pgvector_stores(specs, url, read_build_info(url) if url else None):
        if store is not None and url is None:
            raise ValueError(f"this pipeline searches PostgreSQL: pass store=postgresql://...#table, not {store!r}")
        return
    stores = _store_specs(specs)
    if store is not None:
        path = Path(store).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"document store directory not found: {path}")
        saved = saved_store_config(path)
        for nested in stores:
            params = nested.setdefault("init_parameters", {})
            params["path"] = str(path.resolve())
            params.update({k: saved[k] for k in ("embedding_dim", "factory") if k in saved})
        return
    for nested in stores:
        path = nested.get("init_parameters", {}).get("path")
        if path is None:
            raise ValueError("this pipeline's document store has no path: pass store=<store directory>")
        if not Path(path).expanduser().is_dir():
            raise FileNotFoundError(f"document store directory not found: {path}")


def saved_store_config(path: str | os.PathLike) -> dict[str, Any]:
    """The configuration a `FaissDocumentStore` directory was saved with (``embedding_dim``, ``factory``...).

    :raises FileNotFoundError / ValueError: if ``path`` is not a saved store (as the store itself reports).
    """
    from spart.components.document_stores.faiss.persistence import read_config

    return read_config(path)


def _same_model(model: str, info: dict[str, Any]) -> bool:
    """Whether ``model`` is the store's embedder model under another name (e.g. a copy of the checkpoint)."""
    from spart.encoders.loading import same_model_files

    built = info.get("resolved_model") or info["embedder"]["init_parameters"].get("model")
    return built is not None and same_model_files(model, built)


def _configure_text_embedders(specs: dict[str, dict[str, Any]], store: Any, overrides: dict[str, Any]) -> None:
    method = overrides.get("method")
    if method is not None and method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    text_types = {embedder_type(m, "text") for m in METHODS}
    embedders = [spec for spec in specs.values() if spec["type"] in text_types]
    info = read_build_info(store) if store is not None else None
    for spec in embedders:
        params = spec["init_parameters"]
        if info is not None and params.get("model") is None and overrides.get("model") is None and method is None:
            # Embed questions with the model (and settings) the passages were embedded with.
            matched = text_embedder_spec(info)
            kept = {k: params[k] for k in ("device", "precision") if k in params}
            spec["type"] = matched["type"]
            params.clear()
            params.update(matched["init_parameters"])
            params.update(kept)
        if method is not None:
            spec["type"] = embedder_type(method, "text")
        for key in ("model", "passage_model", "device", "precision"):
            if overrides.get(key) is not None:
                params[key] = overrides[key]
        built_with = info["embedder"]["init_parameters"].get("model") if info is not None else None
        other = info is not None and params.get("model") not in (None, built_with)
        if other and not _same_model(params["model"], info):
            logger.warning(
                "the store at %s was embedded with model %s, but the text embedder uses %s: dense scores are only "
                "meaningful if the two models share an embedding space",
                store,
                info.get("resolved_model"),
                params["model"],
            )
    if embedders or not any(overrides.get(k) is not None for k in ("model", "passage_model", "method")):
        return
    raise ValueError("model/passage_model/method given, but this pipeline has no text embedder")
