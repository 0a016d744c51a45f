"""The one (method, role) -> embedder class table, and what is derived from it."""

from __future__ import annotations

import pytest
from haystack.core.serialization import generate_qualified_class_name

from spart.components import embedders
from spart.components.embedders._base import DocumentEmbedderBase, TextEmbedderBase
from spart.components.embedders.methods import (
    EMBEDDER_TYPES,
    METHODS,
    ROLES,
    embedder_class,
    embedder_type,
    method_and_role,
)
from spart.encoders.config import ART_DEFAULTS, SPIDER_DEFAULTS

PRESETS = {"spider": SPIDER_DEFAULTS, "art": ART_DEFAULTS}
BASES = {"text": TextEmbedderBase, "document": DocumentEmbedderBase}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("role", ROLES)
def test_each_entry_names_its_class(method, role):
    cls = embedder_class(method, role)
    assert generate_qualified_class_name(cls) == embedder_type(method, role) == EMBEDDER_TYPES[(method, role)]
    assert cls.method_defaults is PRESETS[method] and issubclass(cls, BASES[role])
    assert getattr(embedders, cls.__name__) is cls  # the package exports are derived from the same table
    assert method_and_role(embedder_type(method, role)) == (method, role)
    assert "Usage::" in cls.__doc__  # each class keeps a short docstring with an example


def test_package_exports_exactly_the_table():
    assert sorted(embedders.__all__) == sorted(name.rpartition(".")[2] for name in EMBEDDER_TYPES.values())


def test_unknown_method_or_role():
    with pytest.raises(ValueError, match=r"method must be one of \['spider', 'art'\], got 'dpr'"):
        embedder_type("dpr", "text")
    with pytest.raises(ValueError, match="role must be one of"):
        embedder_class("art", "query")
    assert method_and_role("haystack.components.embedders.SentenceTransformersTextEmbedder") is None


def test_store_record_maps_document_to_text_embedder():
    from spart.pipelines.build import text_embedder_spec

    info = {"embedder": {"type": embedder_type("art", "document"), "init_parameters": {"model": "m", "batch_size": 8}}}
    assert text_embedder_spec(info) == {"type": embedder_type("art", "text"), "init_parameters": {"model": "m"}}
    info["embedder"]["type"] = embedder_type("art", "text")
    with pytest.raises(ValueError, match="no known text embedder"):
        text_embedder_spec(info)
