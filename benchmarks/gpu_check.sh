#!/usr/bin/env bash
# GPU check (see benchmarks/gpu_check.py): encode fp32/fp16/bf16, exact search GPU vs CPU, one SPIDER and one ART
# step on CUDA, and a 1-GPU NCCL torchrun run; writes OUT_DIR/gpu_report.json. Under 5 minutes on one GPU.
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# Needs torch with CUDA, transformers and sentence-transformers. spart's other Python needs (faiss-cpu, pydantic)
# may come as wheels in .whl/ (installed into a scratch folder first), for machines without a package registry.
set -uo pipefail
cd "$(dirname "$0")/.."
out_dir=${1:-${OUT:-gpu-check-out}}
mkdir -p "$out_dir"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/spart-gpu-site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/spart-gpu-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
assets=()
[ -f .gpu-assets/minilm/config.json ] && assets=(--assets .gpu-assets/minilm)
python3 benchmarks/gpu_check.py --out "$out_dir/gpu_report.json" --work /tmp/spart-gpu-check "${assets[@]}" "${@:2}"
