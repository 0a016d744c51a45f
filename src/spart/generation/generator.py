"""A frozen LM that writes one question per passage (causal or seq2seq; HF directory, hub id or GGUF file).

Models load through the teacher's loader (:func:`spart.teacher.loading.load_teacher`), so anything that can be
a teacher can write questions, and the same GGUF file serves both roles.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

from spart.data.passages import as_passage
from spart.generation.prompts import GenerationPrompt
from spart.teacher.loading import GENERATION_PRECISIONS

logger = logging.getLogger(__name__)


def auto_generation_precision(native_bf16: bool, batch_size: int, device: str) -> str:
    """What ``precision="auto"`` resolves to for a generator: fp32 without native bf16; bf16 autocast for batches
    (the matmuls dominate); for one sequence at a time, bound by the bytes of weight read per token, int8 weight
    copies on the CPU (where ``torch._weight_int8pack_mm`` exists) and bf16 weights elsewhere."""
    import torch

    if not native_bf16:
        return "fp32"
    if batch_size > 1:
        return "bf16"
    if torch.device(device).type == "cpu" and hasattr(torch, "_weight_int8pack_mm"):
        return "int8-weights"
    return "bf16-weights"


class QuestionGenerator:
    """Writes a question for each passage with a frozen LM.

    :param model: HF directory, ``.gguf`` file or local hub id; ``None`` = the packaged SmolLM2-135M-Instruct.
    :param gguf_file: the GGUF file inside ``model`` (when ``model`` is a directory).
    :param model_kind: ``"auto"``, ``"causal"`` or ``"seq2seq"``.
    :param prompt: the :class:`GenerationPrompt`.
    :param use_chat_template: wrap the request as a user turn of the tokenizer's chat template; ``None`` = when
        the tokenizer has one (instruct models).
    :param max_new_tokens: longest reply.
    :param temperature: sampling temperature; ``0`` = greedy decoding.
    :param top_p: nucleus sampling mass.
    :param batch_size: passages per ``generate`` call.
    :param precision: ``"fp32"``; ``"bf16"`` (autocast, with the linear layers' weights held in bf16 so that they
        are not cast again at every generated token: the numbers of autocast over fp32 weights; embeddings, norms and
        the residual stream in fp32); ``"bf16-weights"`` (every weight cast once, no autocast); ``"auto"`` = where
        bf16 is native, ``"int8-weights"`` at ``batch_size=1`` on the CPU (the query expander's measured path) and
        ``"bf16"`` for batches (bf16 weights were 0.76x autocast writing questions 16 at a time), else ``"fp32"``;
        ``"int8-weights"``: bf16 weights plus an int8 copy of each linear layer's weight for decoded tokens
        (:mod:`spart.teacher.int8_weights`; 2.7x / 3.6x bf16 weights for Qwen2.5-Coder-0.5B / 1.5B answering one
        question at a time, 88-92% of the greedy answers the same, wiki retrieval with them level); all measured
        in docs/benchmarks.md (*LM decoding on the CPU*).
    :param device: ``None`` = CUDA when available, else CPU.

    Usage::

        generator = QuestionGenerator(temperature=0)          # the packaged SmolLM2
        generator.warm_up()
        generator.generate([Passage("p1", "The Eiffel Tower was completed in 1889 ...", "Eiffel Tower")], seed=0)
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        gguf_file: str | None = None,
        model_kind: str = "auto",
        prompt: GenerationPrompt | None = None,
        use_chat_template: bool | None = None,
        max_new_tokens: int = 48,
        temperature: float = 0.7,
        top_p: float = 0.9,
        batch_size: int = 8,
        precision: str = "auto",
        device: str | None = None,
    ) -> None:
        if max_new_tokens <= 0 or batch_size <= 0:
            raise ValueError(f"max_new_tokens and batch_size must be positive, got {max_new_tokens}, {batch_size}")
        if temperature < 0 or not 0 < top_p <= 1:
            raise ValueError(f"temperature must be >= 0 and top_p in (0, 1], got {temperature}, {top_p}")
        if precision not in GENERATION_PRECISIONS:
            raise ValueError(f"precision must be one of {GENERATION_PRECISIONS}, got {precision!r}")
        self.model_name, self.gguf_file, self.model_kind = model, gguf_file, model_kind
        self.prompt = prompt or GenerationPrompt()
        self.use_chat_template = use_chat_template
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.batch_size, self.precision, self.device = batch_size, precision, device
        self.model = self.tokenizer = None
        self.fingerprint: str | None = None
        self.uses_bf16 = False
        self.resolved_precision: str | None = None
        self._prefix = None  # ((prefix, cue), (token ids, key/value cache)) of the last prefix reused

    def warm_up(self) -> None:
        """Load the LM (once)."""
        if self.model is not None:
            return
        import torch

        from spart.encoders.precision import bf16_supported
        from spart.teacher.loading import (
            apply_lm_precision,
            fingerprint_source,
            hold_linear_weights_in_bf16,
            load_teacher,
            resolve_model_source,
        )

        source = resolve_model_source(self.model_name, self.gguf_file)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, tokenizer, kind = load_teacher(source, self.model_kind, device)
        if self.use_chat_template is None:
            self.use_chat_template = kind == "causal" and bool(getattr(tokenizer, "chat_template", None))
        elif self.use_chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"the tokenizer of {source.location} has no chat template")
        if kind == "causal":
            tokenizer.padding_side = "left"  # every reply then starts at the same column
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.device, self.model_kind, self.model, self.tokenizer = device, kind, model, tokenizer
        native = bf16_supported(torch.device(device))
        resolved = self.precision
        if resolved == "auto":  # measured per batch shape (docs/benchmarks.md, LM decoding on the CPU)
            resolved = auto_generation_precision(native, self.batch_size, device)
        self.uses_bf16 = apply_lm_precision(model, resolved, native, device)  # the autocast flag
        if self.uses_bf16:  # the same numbers without recasting every weight at every generated token
            hold_linear_weights_in_bf16(model)
        self.resolved_precision = resolved
        self.fingerprint = fingerprint_source(source)

    def settings(self) -> dict[str, Any]:
        """Everything that changes the questions written (a run refuses to resume under other settings)."""
        return {
            "model": self.model_name,
            "gguf_file": self.gguf_file,
            "fingerprint": self.fingerprint,
            "prompt": self.prompt.digest(),
            "chat": self.use_chat_template,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "batch_size": self.batch_size,
        }

    def _prompts(self, messages: list[str], cue: str) -> list[str]:
        if self.model_kind != "causal":
            return messages
        if self.use_chat_template:
            return [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": m}], tokenize=False, add_generation_prompt=True
                )
                for m in messages
            ]
        return [f"{m}\n\n{cue}:" for m in messages]

    def generate(self, passages: Sequence[Any], seed: int = 0) -> list[str]:
        """The raw reply for each passage (clean it with :func:`spart.generation.clean_question`).

        ``seed`` seeds the sampling of this call, so a batch gives the same replies whenever it is generated
        (resumed runs write what the uninterrupted run would have written, up to float rounding).
        """
        items = [as_passage(p) for p in passages]
        messages = [self.prompt.user_message(p.title or "", p.text) for p in items]
        return self.reply(messages, seed=seed, cue="Question", prefix=self.prompt.message_prefix())

    def reply(
        self, messages: Sequence[str], seed: int = 0, cue: str = "Answer", prefix: str | None = None
    ) -> list[str]:
        """The raw reply to each user message, batched (``generate`` and the query expander both come here).

        :param messages: the user turns (wrapped in the chat template when it is used).
        :param seed: seeds the sampling of this call (greedy decoding ignores it).
        :param cue: without a chat template a causal LM's prompt ends ``"\n\n{cue}:"``.
        :param prefix: text every message starts with (e.g. an instruction before the question). With a causal
            LM the prompt's tokens up to the end of the prefix (the chat template's system turn included) are run
            once and their key/value cache is reused by every later prompt that starts with the same tokens, so
            each reply runs only the tokens after it; in a batch each row is the prefix's tokens, then its left
            padding, then the rest of its prompt. The replies are those of the plain path up to float rounding.
            Ignored for seq2seq LMs (their prompt goes to the encoder).
        :returns: one decoded reply per message.
        :raises ValueError: if a message does not start with ``prefix``.
        """
        if self.model is None:
            raise RuntimeError("call warm_up() first")
        import torch

        items = list(messages)
        if not items:
            return []
        if prefix is not None and not all(m.startswith(prefix) for m in items):
            raise ValueError(f"every message must start with the prefix {prefix!r}")
        cached = self._prefix_cache(prefix, cue) if prefix else None
        replies: list[str] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            prompts = self._prompts(chunk, cue)
            torch.manual_seed(seed * 1_000_003 + start)
            sample = self.temperature > 0
            kwargs = (
                {"do_sample": sample, "temperature": self.temperature, "top_p": self.top_p}
                if sample
                else {"do_sample": False}
            )
            shared = self._after_prefix(prompts, cached) if cached is not None else None
            if shared is not None:
                enc, kwargs[_cache_argument()] = shared
            else:
                encoded = self.tokenizer(
                    prompts, return_tensors="pt", padding=True, add_special_tokens=self._add_special
                )
                enc = {k: encoded[k].to(self.device) for k in ("input_ids", "attention_mask")}  # no token_type_ids
            with torch.inference_mode(), self._autocast():
                out = self.model.generate(
                    **enc, max_new_tokens=self.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id, **kwargs
                )
            if self.model_kind == "causal":
                out = out[:, enc["input_ids"].shape[1] :]
            replies.extend(self.tokenizer.batch_decode(out, skip_special_tokens=True))
        return replies

    @property
    def _add_special(self) -> bool:
        return self.model_kind != "causal" or not self.use_chat_template  # the chat template has its own

    def _autocast(self):
        import torch

        return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.uses_bf16)

    def _prefix_cache(self, prefix: str, cue: str):
        """``(token ids, key/value cache)`` of the prompt up to the end of ``prefix`` (kept for the last prefix);
        ``None`` for seq2seq LMs (their prompt goes to the encoder)."""
        import torch

        if self.model_kind != "causal":
            return None
        if self._prefix is not None and self._prefix[0] == (prefix, cue):
            return self._prefix[1]
        marker = "\u2063"  # an invisible separator: where the prefix ends inside the rendered prompt
        prompt = self._prompts([prefix + marker], cue)[0]
        head = prompt[: prompt.index(marker)]
        ids = self.tokenizer(head, return_tensors="pt", add_special_tokens=self._add_special)["input_ids"][0]
        ids = ids[:-1]  # the last token may merge with the text that follows it
        cached = None
        if len(ids) > 0:
            ids = ids.to(self.device)
            with torch.inference_mode(), self._autocast():
                out = self.model(input_ids=ids[None], use_cache=True)
            cached = (ids, getattr(out, _cache_argument()))
        self._prefix = ((prefix, cue), cached)
        return cached

    def _after_prefix(self, prompts: list[str], cached) -> tuple[dict[str, Any], Any] | None:
        """``(inputs, cache)`` for ``prompts`` that all start with the cached prefix's tokens: each row is those
        tokens, then left padding, then the rest of its prompt (positions skip the padding, as in a left-padded
        batch), with a copy of the prefix's cache for every row; ``None`` when a prompt does not start with them
        (the plain path then runs the whole prompt) or when the cache cannot be repeated across rows."""
        import torch

        prefix_ids, cache = cached
        if len(prompts) > 1 and not hasattr(cache, "batch_repeat_interleave"):
            return None
        head = prefix_ids.tolist()
        rows = self.tokenizer(prompts, add_special_tokens=self._add_special)["input_ids"]
        if not all(len(r) > len(head) and r[: len(head)] == head for r in rows):
            return None
        tails = [r[len(head) :] for r in rows]
        width = max(len(t) for t in tails)
        pad = self.tokenizer.pad_token_id
        ids = [head + [pad] * (width - len(t)) + t for t in tails]
        mask = [[1] * len(head) + [0] * (width - len(t)) + [1] * len(t) for t in tails]
        shared = copy.deepcopy(cache)  # generate extends the cache it is given
        if len(prompts) > 1:
            shared.batch_repeat_interleave(len(prompts))
        enc = {
            "input_ids": torch.tensor(ids, device=self.device),
            "attention_mask": torch.tensor(mask, device=self.device),
        }
        return enc, shared

    def __repr__(self) -> str:
        return f"QuestionGenerator(model={self.model_name!r}, kind={self.model_kind!r}, chat={self.use_chat_template})"


def _cache_argument() -> str:
    """The name transformers gives the key/value cache (``cache`` from 5.x, ``past_key_values`` before)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    return "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
