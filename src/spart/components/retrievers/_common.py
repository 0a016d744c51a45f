"""Shared checks and (de)serialisation for the FaissDocumentStore retrievers."""

from __future__ import annotations

from typing import Any

from haystack import default_from_dict, default_to_dict
from haystack.core.serialization import generate_qualified_class_name
from haystack.document_stores.types import FilterPolicy

from spart.components.document_stores import FaissDocumentStore
from spart.pipelines.loader import LEGACY_STORE_TYPE


def check_store(document_store: Any) -> FaissDocumentStore:
    """The store itself, if it is a `FaissDocumentStore`.

    :raises TypeError: for any other object (as Haystack's own retrievers do for the wrong store class).
    """
    if not isinstance(document_store, FaissDocumentStore):
        raise TypeError(f"document_store must be a FaissDocumentStore, got {type(document_store).__name__}")
    return document_store


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
        raise TypeError(f"{cls.__name__} needs a FaissDocumentStore, got {store['type']!r}")
    params["document_store"] = FaissDocumentStore.from_dict(store)
    if "filter_policy" in params:
        params["filter_policy"] = FilterPolicy.from_str(params["filter_policy"])
    return default_from_dict(cls, data)
