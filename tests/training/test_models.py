"""The encoder factories (one build_encoder, per-method defaults) and random initialisation."""

from __future__ import annotations

import pytest
import torch
from _art_helpers import art_config
from _trainer_helpers import make_tiny_bert, tiny_config

from spart.encoders import DualEncoder
from spart.training.models import art_encoder, spider_encoder


@pytest.fixture(scope="module")
def model_no_dropout(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("models-nodrop"), minilm_dir, dropout=0.0)


def test_random_init_keeps_vocabulary_and_shrinks(tmp_path, model_no_dropout):
    config = tiny_config(tmp_path / "ri", model_no_dropout, random_init=True, random_init_layers=1)
    encoder = spider_encoder(config, torch.device("cpu"))
    original = DualEncoder.load(model_no_dropout, device="cpu", precision="fp32")
    assert encoder.query_model.config.num_hidden_layers == 1
    assert encoder.query_model.config.vocab_size == original.query_model.config.vocab_size
    a = encoder.query_model.embeddings.word_embeddings.weight
    b = original.query_model.embeddings.word_embeddings.weight
    assert not torch.allclose(a, b)


def test_each_method_gets_its_defaults_and_the_config_wins(tmp_path, model_no_dropout):
    spider = spider_encoder(tiny_config(tmp_path, model_no_dropout), torch.device("cpu"))
    assert spider.config.shared and spider.config.pooling == "cls" and spider.precision == "fp32"
    art = art_encoder(art_config(tmp_path, model_no_dropout, pooling=None, precision="fp16"), torch.device("cpu"))
    assert not art.config.shared and art.config.pooling == "cls" and art.passage_model is not None
    assert art.precision == "fp32"  # fp16 training re-embeds the evidence in fp32
    mean = art_encoder(art_config(tmp_path, model_no_dropout, pooling="mean", shared=True), torch.device("cpu"))
    assert mean.config.pooling == "mean" and mean.config.shared
