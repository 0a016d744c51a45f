import pytest

from spart.teacher.prompts import PromptTemplate, default_template


def test_render_passage_and_question():
    template = PromptTemplate()
    assert template.render_passage("Paris", "Capital of France") == (
        "Passage: Paris Capital of France. Please write a question based on this passage."
    )
    assert template.render_question("Where?") == "Question: Where?"


def test_empty_title_leaves_no_double_space():
    assert PromptTemplate().render_passage("", "Text").startswith("Passage: Text.")


def test_template_validation():
    with pytest.raises(ValueError, match="text"):
        PromptTemplate(passage="no placeholder")
    with pytest.raises(ValueError, match="question"):
        PromptTemplate(question="no placeholder")


def test_default_templates_differ_by_kind_and_digest():
    seq, causal = default_template("seq2seq"), default_template("causal")
    assert seq != causal and seq.digest() != causal.digest()
    assert causal.passage.endswith("\n")
    with pytest.raises(ValueError):
        default_template("encoder")


def test_gguf_architecture_read_from_header(tmp_path):
    import struct

    from spart.teacher.loading import ModelSource, detect_model_kind, gguf_architecture

    def string(b: bytes) -> bytes:
        return struct.pack("<Q", len(b)) + b

    # version 3, 0 tensors, 3 KVs: a uint32, a string array, then the architecture string
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 3)
    body += string(b"general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32)
    body += string(b"tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<IQ", 8, 2)
    body += string(b"a") + string(b"bc")
    body += string(b"general.architecture") + struct.pack("<I", 8) + string(b"t5")
    path = tmp_path / "tiny.gguf"
    path.write_bytes(body)
    assert gguf_architecture(path) == "t5"
    assert detect_model_kind(ModelSource(str(tmp_path), "tiny.gguf")) == "seq2seq"
    (tmp_path / "bad.gguf").write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(ValueError, match="not a GGUF"):
        gguf_architecture(tmp_path / "bad.gguf")


def test_resolve_model_source(tmp_path):
    from spart.teacher.loading import packaged_smollm2_path, resolve_model_source

    default = resolve_model_source(None)
    assert default.gguf_file == packaged_smollm2_path().name
    assert resolve_model_source(str(packaged_smollm2_path())) == default
    assert resolve_model_source(str(tmp_path)).location == str(tmp_path.resolve())
    with pytest.raises(FileNotFoundError):
        resolve_model_source(str(tmp_path / "missing.gguf"))
    with pytest.raises(FileNotFoundError):
        resolve_model_source(str(tmp_path), gguf_file="missing.gguf")


def test_fingerprint_follows_weight_bytes(tmp_path):
    from spart.teacher.loading import ModelSource, fingerprint_source

    (tmp_path / "model.safetensors").write_bytes(b"a" * 5000)
    (tmp_path / "config.json").write_text("{}")
    source = ModelSource(str(tmp_path))
    first = fingerprint_source(source)
    assert fingerprint_source(source) == first
    (tmp_path / "model.safetensors").write_bytes(b"a" * 4999 + b"b")
    assert fingerprint_source(source) != first
    assert fingerprint_source(ModelSource("org/hub-model")) != fingerprint_source(ModelSource("org/other"))
