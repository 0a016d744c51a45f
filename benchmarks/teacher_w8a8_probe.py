"""Accuracy probe for an 8-bit teacher (no speed): how far 8-bit weights *and* activations move the scores.

Every linear layer of the teacher but the LM head is fake-quantised in fp32: weights to int8 with one scale per
output channel, activations to int8 at run time per token, or per group of ``G`` channels of a token (what
OpenVINO's and ONNX Runtime's 8-bit kernels do), optionally after SmoothQuant's smoothing (Xiao et al., 2023):
each input channel ``j`` divided by ``s_j = max|X_j|^a / max|W_j|^(1-a)`` and the weight's column multiplied by it,
with ``max|X_j|`` calibrated on other questions' pairs. The last decoder layer (and optionally the down
projections) can stay fp32, as the bf16 path keeps its last layer. Scores are compared with the fp32 teacher's on
the same pairs as ``bench_teacher.py backends`` (Spearman per question, mean and min; same top-1). A form that
keeps Spearman >= 0.99 here is a candidate for a real 8-bit runtime; one that does not, is not.

Run alone (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/teacher_w8a8_probe.py --queries 10 --k 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (label, smoothing exponent a or None, activation group or None = per token, keep the last layer, fp32 name parts)
CONFIGS = (
    ("per token", None, None, False, ()),
    ("per token, last layer fp32", None, None, True, ()),
    ("per token, smoothed 0.5, last layer fp32", 0.5, None, True, ()),
    ("per token, smoothed 0.8, last layer fp32", 0.8, None, True, ()),
    ("per token, smoothed 0.5, last layer + down projections fp32", 0.5, None, True, ("down_proj",)),
    ("groups of 32, last layer fp32", None, 32, True, ()),
    ("groups of 32, smoothed 0.5", 0.5, 32, False, ()),
    ("groups of 32, smoothed 0.3, last layer fp32", 0.3, 32, True, ()),
    ("groups of 32, smoothed 0.5, last layer fp32", 0.5, 32, True, ()),
    ("groups of 16, smoothed 0.5, last layer fp32", 0.5, 16, True, ()),
    ("groups of 32, smoothed 0.5, last layer + down projections fp32", 0.5, 32, True, ("down_proj",)),
)


def fake_int8(x, group: int | None = None):
    """Symmetric int8 round trip of the last axis: one scale per row, or per ``group`` channels of a row."""
    import torch

    shape = x.shape
    if group:
        x = x.reshape(*shape[:-1], shape[-1] // group, group)
    scale = x.abs().amax(-1, keepdim=True).clamp(min=1e-8) / 127
    return (torch.round(x / scale).clamp(-127, 127) * scale).reshape(shape)


def main(argv: list[str] | None = None) -> int:
    import torch
    from bench_embedding import cpu_description
    from bench_teacher import make_scorer, spearman, workload

    from spart.teacher.loading import decoder_layers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--calibration-queries", type=int, default=6, help="the next test queries, top 8 each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default=None, help="teacher (default: the packaged SmolLM2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = cpu_description()
    print(f"# CPU: {cpu['model']}; key flags: {' '.join(cpu['key_flags'])}")
    questions, passages, _ = workload(args)
    scorer = make_scorer("fp32", batch_size=args.batch_size, model=args.model)
    scorer.progress_bar = False
    reference = scorer.score_topk(questions, passages)
    model = scorer.model
    head = model.get_output_embeddings()
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head}
    layers = decoder_layers(model)
    last = {id(m) for m in layers[-1].modules()} if layers is not None else set()

    act_max: dict[str, torch.Tensor] = {}

    def calibrate(name):
        def hook(module, inputs):
            seen = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).abs().amax(0)
            act_max[name] = torch.maximum(act_max[name], seen) if name in act_max else seen

        return hook

    hooks = [m.register_forward_pre_hook(calibrate(n)) for n, m in linears.items()]
    cal_q, cal_p, _ = workload(
        argparse.Namespace(
            queries=args.queries + args.calibration_queries, k=8, threads=args.threads, batch_size=args.batch_size
        )
    )
    scorer.score_topk(cal_q[args.queries :], cal_p[args.queries :])
    for hook in hooks:
        hook.remove()
    original = {n: m.weight.detach().clone() for n, m in linears.items()}

    print(f"{'configuration':64s} {'rho mean':>9s} {'rho min':>8s} {'top-1':>6s}")
    for label, alpha, group, keep_last, keep_names in CONFIGS:
        hooks = []
        for name, module in linears.items():
            module.weight.data.copy_(original[name])
            if (keep_last and id(module) in last) or any(k in name for k in keep_names):
                continue
            weight = original[name]
            smooth = torch.ones(weight.shape[1])
            if alpha is not None:
                smooth = act_max[name].clamp(min=1e-5) ** alpha / weight.abs().amax(0).clamp(min=1e-5) ** (1 - alpha)
            module.weight.data.copy_(fake_int8(weight * smooth))  # one scale per output channel

            def quantise_input(module, inputs, smooth=smooth, group=group):
                return (fake_int8(inputs[0] / smooth, group),)

            hooks.append(module.register_forward_pre_hook(quantise_input))
        scores = scorer.score_topk(questions, passages)
        for hook in hooks:
            hook.remove()
        rho = [spearman(a, b) for a, b in zip(scores, reference)]
        top1 = np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(scores, reference)])
        print(f"{label:64s} {np.mean(rho):9.4f} {np.min(rho):8.4f} {top1:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
