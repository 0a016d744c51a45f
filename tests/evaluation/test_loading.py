"""Reading what a pipeline file names without loading it: `spart.evaluation.loading`."""

from __future__ import annotations

import pytest
from haystack.marshal import YamlMarshaller

from spart.evaluation.loading import text_embedder_model
from spart.pipelines import read_pipeline_dict


def _write(tmp_path, name, data):
    path = tmp_path / f"{name}.yaml"
    path.write_text(YamlMarshaller().marshal(data))
    return str(path)


def test_text_embedder_model_reads_the_named_model_and_method(tmp_path):
    assert text_embedder_model("dense_qa") is None  # the packaged pipelines follow the store they are given
    assert text_embedder_model("bm25_qa") is None  # no text embedder at all
    data = read_pipeline_dict("dense_qa")
    embedder = data["components"]["text_embedder"]
    embedder["type"] = "spart.components.embedders.art_text_embedder.ARTTextEmbedder"
    embedder["init_parameters"].update(model="query-tower", passage_model="passage-tower")
    assert text_embedder_model(_write(tmp_path, "art", data)) == {
        "model": "query-tower",
        "method": "art",
        "passage_model": "passage-tower",
    }


def test_text_embedder_model_refuses_two_embedders_naming_different_models(tmp_path):
    data = read_pipeline_dict("dense_qa")
    first = data["components"]["text_embedder"]
    first["init_parameters"]["model"] = "model-a"
    data["components"]["second_embedder"] = {
        "type": first["type"],
        "init_parameters": dict(first["init_parameters"], model="model-b"),
    }
    with pytest.raises(ValueError, match="different models"):
        text_embedder_model(_write(tmp_path, "two", data))
