"""Shared checks and (de)serialisation for the FaissDocumentStore retrievers."""

from __future__ import annotations

from typing import Any

from haystack import default_from_dict, default_to_dict
from haystack.core.serialization import generate_qualified_class_name
from haystack.document_stores.types import FilterPolicy

from spart.components.document_stores import FaissDocumentStore
from spart.pipelines.loader import LEGACY_STORE_TYPE


def check_store(document_store: Any) -> FaissDocumentStore:
    if not isinstance(document_store, FaissDocumentStore):
        raise ValueError(f"document_store must be a FaissDocumentStore, got {type(document_store).__name__}")
    return document_store


def check_top_k(top_k: Any) -> int:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k <= 0:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    return top_k


def retriever_to_dict(retriever: Any, **extra: Any) -> dict[str, Any]:
    return default_to_dict(
        retriever,
        document_store=retriever.document_store.to_dict(),
        filters=retriever.filters,
        top_k=retriever.top_k,
        filter_policy=retriever.filter_policy.value,
        **extra,
    )


def retriever_from_dict(cls: type, data: dict[str, Any]) -> Any:
    data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}
    params = data["init_parameters"]
    store = params.get("document_store")
    if not isinstance(store, dict) or "type" not in store:
        raise ValueError(f"{cls.__name__}: init_parameters.document_store must be a serialised FaissDocumentStore")
    # We know the only acceptable class, so we build it directly instead of importing a class by name.
    if store["type"] not in (generate_qualified_class_name(FaissDocumentStore), LEGACY_STORE_TYPE):
        raise ValueError(f"{cls.__name__} needs a FaissDocumentStore, got {store['type']!r}")
    params["document_store"] = FaissDocumentStore.from_dict(store)
    if "filter_policy" in params:
        params["filter_policy"] = FilterPolicy.from_str(params["filter_policy"])
    return default_from_dict(cls, data)
