"""Config loading: YAML + key=value overrides, validation errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from spart.training.config import (
    ContrastiveTrainingConfig,
    PairsDataConfig,
    TrainingConfig,
    apply_overrides,
    load_config,
    save_config,
)

SPIDER_YAML = """
output_dir: runs/x
model: some/model
batch_size: 32
data:
  kind: spider
  corpus: c.tsv
  spans: s.jsonl.gz
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_follow_spider_and_dpr(tmp_path):
    config = load_config(ContrastiveTrainingConfig, write(tmp_path, SPIDER_YAML))
    assert config.lr == 2e-5 and config.grad_clip == 2.0 and config.warmup_ratio == 0.01
    assert config.shared is True and config.pooling == "cls" and config.temperature == 1.0
    assert config.query_max_length == 64 and config.passage_max_length == 240
    assert config.data.kind == "spider" and config.batch_size == 32


def test_overrides_parse_yaml_values_and_nested_keys(tmp_path):
    config = load_config(
        ContrastiveTrainingConfig,
        write(tmp_path, SPIDER_YAML),
        ["lr=1e-5", "shared=false", "data.spans=other.jsonl", "export-steps=[10, 20]", "max_steps=7"],
    )
    assert config.lr == 1e-5 and config.shared is False and config.max_steps == 7
    assert config.data.spans == Path("other.jsonl") and config.export_steps == [10, 20]


def test_override_switches_data_kind(tmp_path):
    config = load_config(
        ContrastiveTrainingConfig,
        write(tmp_path, SPIDER_YAML.split("data:")[0]),
        ["data.kind=pairs", "data.beir_dir=/x/pydocs"],
    )
    assert isinstance(config.data, PairsDataConfig) and config.data.split == "train"


def test_unknown_option_is_rejected_with_its_name(tmp_path):
    with pytest.raises(ValueError, match="lrr"):
        load_config(ContrastiveTrainingConfig, write(tmp_path, SPIDER_YAML), ["lrr=1"])


def test_invalid_value_names_field(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        load_config(ContrastiveTrainingConfig, write(tmp_path, SPIDER_YAML), ["batch_size=0"])


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="invalid YAML"):
        load_config(TrainingConfig, write(tmp_path, "output_dir: [unclosed"))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(TrainingConfig, tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="mapping"):
        load_config(TrainingConfig, write(tmp_path, "- a\n- b\n"))


def test_bad_override_syntax():
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["lr"])
    with pytest.raises(ValueError, match="not a section"):
        apply_overrides({"lr": 1}, ["lr.x=2"])


def test_pairs_need_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        PairsDataConfig()
    with pytest.raises(ValueError, match="exactly one"):
        PairsDataConfig(beir_dir="a", dpr_json="b")


def test_warmup_steps_from_ratio_or_explicit(tmp_path):
    config = TrainingConfig(output_dir=tmp_path, max_steps=300, warmup_ratio=0.01)
    assert config.resolved_warmup_steps() == 3
    assert TrainingConfig(output_dir=tmp_path, warmup_steps=7).resolved_warmup_steps() == 7


def test_save_config_round_trips(tmp_path):
    config = load_config(ContrastiveTrainingConfig, write(tmp_path, SPIDER_YAML), ["lr=3e-5"])
    save_config(config, tmp_path / "out" / "config.yaml")
    again = load_config(ContrastiveTrainingConfig, tmp_path / "out" / "config.yaml")
    assert again == config


def test_example_configs_are_valid():
    root = Path(__file__).resolve().parents[2] / "src/spart/training/configs"
    # Only the contrastive trainer's configs (other trainers ship theirs in the same folder).
    configs = sorted([*root.glob("spider*.yaml"), *root.glob("fewshot*.yaml")])
    assert len(configs) >= 3, configs
    for path in configs:
        load_config(ContrastiveTrainingConfig, path)


def test_spider_data_config_pairs_sources():
    from spart.training.config import SpiderDataConfig

    assert len(SpiderDataConfig(corpus=["a", "b"], spans=["x", "y"]).sources()) == 2
    with pytest.raises(ValueError, match="same length"):
        SpiderDataConfig(corpus=["a", "b"], spans=["x"])


def test_a_separate_passage_model_needs_two_towers(tmp_path):
    from spart.training.config import ARTTrainingConfig

    with pytest.raises(ValueError, match="set shared: false"):
        load_config(ContrastiveTrainingConfig, write(tmp_path, SPIDER_YAML + "passage_model: other/model\n"))
    with pytest.raises(ValueError, match="set shared: false"):
        ARTTrainingConfig(output_dir=tmp_path, model="m", passage_model="p", shared=True, questions="q", evidence="e")
    config = load_config(ContrastiveTrainingConfig, write(tmp_path, SPIDER_YAML + "passage_model: p\nshared: false\n"))
    assert config.passage_model == "p" and not config.shared


def test_art_defaults_differ_from_spider_only_where_art_differs(tmp_path):
    from spart.training.config import ARTTrainingConfig, EncoderTrainingConfig

    art = ARTTrainingConfig(output_dir=tmp_path, model="m", questions="q", evidence="e")
    assert isinstance(art, EncoderTrainingConfig) and not art.shared and art.grad_clip == 1.0
    assert art.pooling is None and art.normalize is None and art.top_k == 32 and art.teacher.use_cache
