"""Tiny random teachers (causal Llama, seq2seq T5) saved as HF directories, with MiniLM's tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest


def _tokenizer(minilm_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_dir)
    tok.eos_token = "[SEP]"  # BERT has no EOS; give the scorer one to append, like T5's </s>
    return tok


def build_tiny_causal(out: Path, minilm_dir: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _tokenizer(minilm_dir)
    config = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.cls_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_t5(out: Path, minilm_dir: Path) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    tok = _tokenizer(minilm_dir)
    config = T5Config(
        vocab_size=tok.vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    T5ForConditionalGeneration(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory, minilm_dir) -> Path:
    return build_tiny_causal(tmp_path_factory.mktemp("tiny-llama"), minilm_dir)


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory, minilm_dir) -> Path:
    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), minilm_dir)


@pytest.fixture
def passages():
    from spart.data.readers import Passage

    return [
        Passage("p1", "Paris is the capital and most populous city of France.", "Paris"),
        Passage("p2", "A banana is an elongated, edible fruit of large herbaceous flowering plants.", "Banana"),
        Passage(
            "p3",
            "Python is a high-level, general-purpose programming language created by Guido van "
            "Rossum. Its design emphasises code readability with significant indentation.",
            "Python",
        ),
        Passage("p4", "Short text.", ""),
    ]


def build_tiny_gpt2(out: Path, minilm_dir: Path) -> Path:
    """GPT-2 has learned absolute positions: left padding is only correct with explicit position ids."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = _tokenizer(minilm_dir)
    config = GPT2Config(
        vocab_size=tok.vocab_size,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=512,
        bos_token_id=tok.cls_token_id,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, minilm_dir) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"), minilm_dir)
