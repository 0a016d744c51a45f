"""8-bit weights for batch-one decoding on the CPU: each linear layer keeps an int8 copy of its weight.

Decoding one token at a time multiplies a single row by every weight matrix, so it is bound by the bytes of
weight read, not by arithmetic. An int8 copy with one bf16 scale per output channel (symmetric, round to nearest,
``W ~ q * s``, ``|q| <= 127``) halves those bytes again after bf16, and ``torch._weight_int8pack_mm`` multiplies
bf16 rows by it without a dequantised copy. Measured on an AMD EPYC with native bf16 (a 1536 x 8960 layer, two
threads): 2.2x bf16 for one row, 1.4x for four, 0.93x for eight and 0.38x for 64, so a layer takes its int8 path
for at most :data:`INT8_MAX_ROWS` rows (decoded tokens) and its bf16 weight for more (a prompt). Dequantising the
int8 weight for a prompt instead would save the bf16 copy's memory but took 17 ms per call for that layer, longer
than the layer's bf16 product at 64 rows.

Only weights are quantised; activations stay bf16, so the activation outliers that broke dynamic 8-bit
quantisation of Qwen2.5 (per-tensor activation scales; docs/benchmarks.md) do not arise. The prompt runs with the
bf16 weights and each decoded token with the int8 copy: two slightly different models in one reply, whose answers
are compared with bf16's in the benchmark (greedy decoding). Used by the question generator's and the query
expander's ``"int8-weights"``; not by the teacher, which scores whole sequences (many rows) at once.
"""

from __future__ import annotations

import torch

INT8_MAX_ROWS = 4
# torch 2.13's CPU kernel reads the input width in blocks: widths that are not a multiple of 16 gave wrong products
# or crashed the process (probed: 50 and 100 wrong or a segfault; 32, 48, 64, 96 and 128 right); 32 leaves margin,
# and every LM layer spart uses is a multiple of 64 wide.
INT8_WIDTH_MULTIPLE = 32


class Int8WeightLinear(torch.nn.Module):
    """A frozen ``nn.Linear`` in bf16 with an int8 copy of its weight for calls of at most ``max_rows`` rows.

    :param linear: the layer to copy (any float dtype; not changed).
    :param max_rows: calls with at most this many rows (all leading dimensions together) of a bf16 input use the
        int8 weight; others use the bf16 weight, as does every call when ``in_features`` is not a multiple of
        :data:`INT8_WIDTH_MULTIPLE` (the kernel's blocks).

    Usage::

        layer = Int8WeightLinear(torch.nn.Linear(64, 32))
        layer(torch.randn(1, 64, dtype=torch.bfloat16))     # the int8 path
    """

    def __init__(self, linear: torch.nn.Linear, max_rows: int = INT8_MAX_ROWS) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        # a bf16 weight is kept as it is: an output embedding tied to the input embedding shares its tensor
        held = linear.weight.detach().to(torch.bfloat16)
        scales = (weight.abs().amax(dim=1) / 127.0).clamp_min(torch.finfo(torch.float32).tiny)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.max_rows = max_rows if linear.in_features % INT8_WIDTH_MULTIPLE == 0 else 0  # 0: never the int8 path
        self.register_buffer("weight", held)
        self.register_buffer("weight_int8", torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(torch.bfloat16))
        bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if rows > self.max_rows or x.dtype != torch.bfloat16 or x.device.type != "cpu":
            return torch.nn.functional.linear(x.to(self.weight.dtype), self.weight, self.bias)
        out = torch._weight_int8pack_mm(x.reshape(rows, self.in_features), self.weight_int8, self.scales)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, max_rows={self.max_rows}"


def hold_linear_weights_in_int8(model, max_rows: int = INT8_MAX_ROWS) -> int:
    """Cast a frozen LM to bf16 and give every ``nn.Linear`` (the LM head included) an int8 weight copy for
    decoding (see the module docstring). Embeddings and norms stay bf16, as with ``"bf16-weights"``.

    :param model: the loaded LM, changed in place.
    :param max_rows: rows up to which a layer uses its int8 weight.
    :returns: the number of linear layers replaced.
    """
    model.to(torch.bfloat16)
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, torch.nn.Linear)
    ]
    for parent, name, child in targets:
        setattr(parent, name, Int8WeightLinear(child, max_rows))
    return len(targets)
