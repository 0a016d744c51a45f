"""Tiny random teacher LMs (causal Llama, seq2seq T5, GPT-2) saved as HF directories with MiniLM's tokenizer.

Shared by the teacher, ranker, pipeline and training tests (test modules import it; they cannot import conftest).
"""

from __future__ import annotations

from pathlib import Path


def teacher_tokenizer(minilm_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_dir)
    tok.eos_token = "[SEP]"  # BERT has no EOS; give the scorer one to append, like T5's </s>
    return tok


def build_tiny_causal(out: Path, minilm_dir: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = teacher_tokenizer(minilm_dir)
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
    tok = teacher_tokenizer(minilm_dir)
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


def build_tiny_gpt2(out: Path, minilm_dir: Path) -> Path:
    """GPT-2 has learned absolute positions: left padding is only correct with explicit position ids."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = teacher_tokenizer(minilm_dir)
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
