"""The training registry: every row resolves to a config class, two factories and a trainer; unknown methods
and mismatched configs are clear errors; the CLI reads its methods from the table."""

from __future__ import annotations

import inspect

import pytest

from spart.training.config import TrainingConfig
from spart.training.registry import METHODS, TrainingMethod, get_method, run_training
from spart.training.trainer import Trainer


def test_the_table_has_the_three_methods():
    assert list(METHODS) == ["spider", "few-shot", "art"]
    assert all(name == row.name for name, row in METHODS.items())


@pytest.mark.parametrize("name", list(METHODS))
def test_every_row_resolves(name):
    row = get_method(name)
    assert issubclass(row.config_class(), TrainingConfig)
    assert list(inspect.signature(row.dataset_factory()).parameters) == ["config"]
    assert list(inspect.signature(row.encoder_factory()).parameters) == ["config", "device"]
    trainer = row.trainer_class()
    assert issubclass(trainer, Trainer)
    assert list(inspect.signature(trainer.build).parameters) == ["config", "encoder", "dataset", "ctx"]


def test_rows_pick_their_method_pieces():
    assert get_method("spider") == TrainingMethod(
        "spider",
        METHODS["spider"].summary,
        **{k: getattr(METHODS["few-shot"], k) for k in ("config", "dataset", "encoder", "trainer")},
    )
    art = get_method("art")
    assert art.config_class().__name__ == "ARTTrainingConfig" and art.trainer_class().__name__ == "ARTTrainer"
    assert art.encoder_factory().__name__ == "art_encoder" and art.dataset_factory().__name__ == "art_dataset"


def test_unknown_method_and_broken_row_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unknown training method 'adapt' \(known: spider, few-shot, art\)"):
        get_method("adapt")
    broken = TrainingMethod("x", "", "spart.training.config:NoSuchConfig", "", "", "")
    with pytest.raises(ImportError, match="NoSuchConfig"):
        broken.config_class()
    from spart.training.config import ContrastiveTrainingConfig

    config = ContrastiveTrainingConfig(output_dir=tmp_path, model="m", data={"kind": "pairs", "beir_dir": tmp_path})
    with pytest.raises(ValueError, match="art trains from a ARTTrainingConfig, got ContrastiveTrainingConfig"):
        run_training("art", config)


def test_cli_lists_the_methods(capsys):
    from spart.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert all(f"{m.name}" in out and m.summary in out for m in METHODS.values())
