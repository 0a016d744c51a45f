"""The OpenVINO backend of DualEncoder: conversion, cache, staleness, threads, and a bad conversion."""

from __future__ import annotations

import copy
import sys
import threading

import numpy as np
import pytest
import torch
from _backend_helpers import TEXTS, load

from spart.encoders import ART_DEFAULTS
from spart.encoders import openvino_backend as vb

needs_openvino = pytest.mark.usefixtures("openvino_extra")
pytestmark = pytest.mark.usefixtures("spart_cache")


@needs_openvino
def test_separate_towers_convert_to_two_folders(tiny_bert_dir, spart_cache):
    encoder = load(tiny_bert_dir, "openvino", defaults=ART_DEFAULTS)
    assert encoder.inference_backend == "openvino"
    folders = vb.tower_dirs(encoder)
    assert folders["query"] != folders["passage"]
    assert all((f / "tower.xml").is_file() and (f / "tower.bin").is_file() for f in folders.values())
    assert folders["query"].parent == spart_cache / "openvino" / vb.EXPORT_FORMAT / encoder.fingerprint
    assert not [p for p in folders["query"].parent.iterdir() if p.name.startswith(".")]  # no staging left


@needs_openvino
def test_second_load_reuses_the_conversion(tiny_bert_dir, monkeypatch):
    expected = load(tiny_bert_dir, "openvino").encode_passages(TEXTS)
    monkeypatch.setattr(vb, "export_tower", lambda *a, **k: pytest.fail("converted again"))
    np.testing.assert_array_equal(load(tiny_bert_dir, "openvino").encode_passages(TEXTS), expected)


@needs_openvino
def test_changed_weights_give_a_new_conversion(tiny_bert_dir):
    encoder = load(tiny_bert_dir, "openvino")
    before = encoder.encode_passages(TEXTS)
    old = vb.tower_dirs(encoder)["passage"]
    with torch.no_grad():  # an in-place update, as an optimiser step makes
        encoder.query_model.encoder.layer[0].output.dense.weight[:3].add_(0.5)
    after = encoder.encode_passages(TEXTS)
    assert vb.tower_dirs(encoder)["passage"] != old
    assert np.abs(after - before).max() > 1e-3
    reference = load(tiny_bert_dir, "torch")
    reference.load_state_dict(encoder.state_dict())
    np.testing.assert_allclose(after, reference.encode_passages(TEXTS), atol=1e-5)


@needs_openvino
def test_a_copy_and_concurrent_threads_encode_the_same(tiny_bert_dir):
    encoder = load(tiny_bert_dir, "openvino")
    texts = [f"{t} ({i})" for i in range(8) for t in TEXTS]
    expected = encoder.encode_passages(texts, batch_size=4)
    np.testing.assert_array_equal(copy.deepcopy(encoder).encode_passages(texts, batch_size=4), expected)
    results, errors = [None] * 4, []

    def work(i):
        try:
            results[i] = encoder.encode_passages(texts, batch_size=4)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results:
        np.testing.assert_array_equal(got, expected)


@needs_openvino
def test_a_conversion_that_differs_from_torch_is_rejected(tiny_bert_dir, monkeypatch, spart_cache):
    real = vb.compile_tower

    class Doubled:
        def __init__(self, compiled):
            self.compiled = compiled

        def __call__(self, feed):
            return [2 * self.compiled(feed)[0]]

    monkeypatch.setattr(vb, "compile_tower", lambda model, threads=None: Doubled(real(model, threads)))
    encoder = load(tiny_bert_dir, "openvino")
    with pytest.raises(ValueError, match="differs from torch"):
        encoder.encode_queries(TEXTS)
    assert not (spart_cache / "openvino" / vb.EXPORT_FORMAT / encoder.fingerprint).exists() or not any(
        (spart_cache / "openvino" / vb.EXPORT_FORMAT / encoder.fingerprint).iterdir()
    )


def test_missing_extra_names_it(tiny_bert_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # not installed, as far as imports can tell
    encoder = load(tiny_bert_dir, "openvino")
    with pytest.raises(ImportError, match=r"pip install 'spart\[openvino\]'"):
        encoder.encode_queries(TEXTS)
