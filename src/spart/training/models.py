"""The models a training run builds from its config: the encoder to train, and ART's teacher.

:func:`build_encoder` is the one way to turn an :class:`~spart.training.config.EncoderTrainingConfig` into a
:class:`~spart.encoders.DualEncoder`; :func:`spider_encoder` and :func:`art_encoder` are the registry's encoder
factories, which only pick the method's defaults (:mod:`spart.training.registry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from spart.encoders import ART_DEFAULTS, SPIDER_DEFAULTS, DualEncoder
from spart.encoders.precision import resolve_precision

if TYPE_CHECKING:
    from spart.encoders import DualEncoderConfig
    from spart.training.config import ARTTrainingConfig, ContrastiveTrainingConfig, EncoderTrainingConfig


def build_encoder(
    config: EncoderTrainingConfig, device: torch.device, *, defaults: DualEncoderConfig, precision: str = "fp32"
) -> DualEncoder:
    """The encoder to train: loaded from ``config.model`` (and ``config.passage_model``) with ``defaults`` for
    what neither the model nor the config says (the config wins), or, with ``random_init``, a randomly
    initialised model of the same architecture (optionally fewer layers / a smaller hidden size) and vocabulary.

    :param config: the run's encoder options.
    :param device: where the model lives.
    :param defaults: the method's settings (:data:`~spart.encoders.SPIDER_DEFAULTS`,
        :data:`~spart.encoders.ART_DEFAULTS`).
    :param precision: the encoder's own inference precision, ``fp32`` or ``bf16`` (others read as ``fp32``);
        training steps autocast on their own.
    :returns: the encoder, in fp32 weights (with :mod:`spart.training.dropout`'s dropout on CPU unless
        ``config.fast_dropout`` is false).
    """
    precision = precision if precision in ("fp32", "bf16") else "fp32"
    encoder = _load_encoder(config, device, defaults, precision)
    if config.fast_dropout and device.type == "cpu":
        from spart.training.dropout import use_fast_dropout

        for model in (encoder.query_model, encoder.passage_model):
            if model is not None:
                use_fast_dropout(model)
    return encoder


def _load_encoder(
    config: EncoderTrainingConfig, device: torch.device, defaults: DualEncoderConfig, precision: str
) -> DualEncoder:
    encoder = DualEncoder.load(
        config.model,
        config.passage_model,
        defaults=defaults,
        device=device,
        precision=precision,
        shared=config.shared,
        pooling=config.pooling,
        normalize=config.normalize,
        query_max_length=config.query_max_length,
        passage_max_length=config.passage_max_length,
    )
    if not config.random_init:
        return encoder
    from transformers import AutoModel

    arch = encoder.query_model.config.to_dict()
    if config.random_init_layers:
        arch["num_hidden_layers"] = config.random_init_layers
    if config.random_init_hidden:
        heads = max(1, config.random_init_hidden // 64)
        arch.update(
            hidden_size=config.random_init_hidden,
            num_attention_heads=heads,
            intermediate_size=4 * config.random_init_hidden,
        )
    model_config = type(encoder.query_model.config).from_dict(arch)
    torch.manual_seed(config.seed)
    query_model = AutoModel.from_config(model_config)
    return DualEncoder(query_model, encoder.tokenizer, config=encoder.config, device=device, precision=precision)


def spider_encoder(config: ContrastiveTrainingConfig, device: torch.device) -> DualEncoder:
    """SPIDER and few-shot: SPIDER's defaults (one shared tower, CLS), fp32."""
    return build_encoder(config, device, defaults=SPIDER_DEFAULTS)


def art_encoder(config: ARTTrainingConfig, device: torch.device) -> DualEncoder:
    """ART: ART's defaults (two towers, CLS); the encoder re-embeds the evidence in the run's precision (bf16
    where ``precision`` says so, fp32 under fp16 training, whose scaler is for the training step only)."""
    precision = resolve_precision("fp32" if config.precision == "fp16" else config.precision, device)
    return build_encoder(config, device, defaults=ART_DEFAULTS, precision=precision)


def build_teacher(config: ARTTrainingConfig, device: torch.device) -> Any:
    """The teacher named by ``config.teacher``, warmed up: the question-likelihood scorer with its score cache, or
    an :class:`~spart.teacher.EncoderScorer` for an encoder teacher; wrapped in a
    :class:`~spart.teacher.mixing.BaseInterpolatedTeacher` when ``teacher.base_weight`` > 0."""
    from spart.teacher import EncoderScorer, QuestionLikelihoodScorer, ScoreCache, is_encoder_model

    t = config.teacher
    if t.kind == "encoder" and t.model is None:
        raise ValueError("teacher.kind: encoder needs teacher.model (an encoder directory)")
    if t.kind == "encoder" or (t.kind == "auto" and is_encoder_model(t.model)):
        scorer: Any = EncoderScorer(
            t.model, device=t.device or str(device), precision=t.precision, batch_size=config.encode_batch_size
        )
    else:
        cache = None
        if t.use_cache:
            cache = ScoreCache(t.cache or Path(config.output_dir) / "teacher-scores.sqlite")
        scorer = QuestionLikelihoodScorer(
            t.model,
            gguf_file=t.gguf_file,
            model_kind=t.model_kind,
            use_chat_template=t.use_chat_template,
            precision=t.precision,
            device=t.device or str(device),
            batch_size=t.batch_size,
            max_passage_tokens=t.max_passage_tokens,
            max_question_tokens=t.max_question_tokens,
            cache=cache,
        )
    scorer.warm_up()
    if t.base_weight > 0:
        from spart.teacher.mixing import BaseInterpolatedTeacher

        base = DualEncoder.load(t.base_model or config.model, device=device)
        return BaseInterpolatedTeacher(scorer, base, t.base_weight, batch_size=config.encode_batch_size)
    return scorer
