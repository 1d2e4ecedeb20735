#!/usr/bin/env bash
# bench/page_encode.py on a CUDA machine: ColQwen2-sized page encoding, polylens vs the bare
# forward pass, bf16 (what ColQwen2 is run in) and then fp16 (what polylens picks on CUDA).
#
# The lent GPU machine (one H200) has no network, so nothing can be pip-installed there,
# and a venv with PyPI's torch==2.13.0 would need its CUDA build (torch plus the nvidia-*
# wheels, several GB), which can neither be fetched there nor carried (64 MiB a call).
# Its own python3 (/opt/torch/.venv) already holds a CUDA torch (2.11+cu130 when last
# seen), transformers, tokenizers, numpy, pyarrow, pillow, rich, typer and pathspec; what
# polylens's page-indexing path lacks there is lancedb, faiss-cpu and pypdfium2 (with
# lancedb's small deps). So:
#
#   here, once (~5 min, needs PyPI):   bash bench/gpu/page_encode.sh pack
#       downloads those wheels for CPython 3.12 at this venv's versions and packs them,
#       unzipped, into .bench-work/gpu-site.tar.xz (~56 MB; the working tree is ~3 MB).
#   there, in one device call:
#       command: bash bench/gpu/page_encode.sh
#       carry:   [".bench-work/gpu-site.tar.xz"]        timeout_s: 540
#       It unpacks the bundle to /tmp, puts it and src/ on PYTHONPATH (polylens is not
#       installed there), builds the random model on the GPU, and writes
#       $OUT/page_encode-cuda-bf16.json, $OUT/page_encode-cuda-fp16.json and the log.
#       Copy the JSON files to bench/results/ to keep them.
#
# Knobs (environment): PAGES (64), DEVICE (cuda), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=.bench-work/gpu-site.tar.xz
PACKAGES="lancedb lance-namespace lance-namespace-urllib3-client deprecation overrides
  pydantic pydantic-core annotated-types typing-inspection typing-extensions faiss-cpu pypdfium2"

if [ "${1:-run}" = pack ]; then
  py=${PYTHON:-.venv/bin/python}
  pins=$("$py" - $PACKAGES <<'EOF'
import sys
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))
EOF
)
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  # the machine's pip config pins a CPU torch and constraints: neither applies here
  PIP_CONSTRAINT= "$py" -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$stage/wheels" $pins
  mkdir -p "$stage/site" "$(dirname "$BUNDLE")"
  for wheel in "$stage"/wheels/*.whl; do unzip -q -o "$wheel" -d "$stage/site"; done
  tar -C "$stage/site" -cf - . | xz -9 -T2 >"$BUNDLE.tmp"
  mv "$BUNDLE.tmp" "$BUNDLE"
  echo "packed $pins"
  ls -l "$BUNDLE"
  exit 0
fi

OUT=${OUT:-$PWD/.bench-work/gpu-out}
PAGES=${PAGES:-64}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"

run() {
  [ -f "$BUNDLE" ] || { echo "missing $BUNDLE: run 'bash $0 pack' here and carry it"; exit 2; }
  site=/tmp/polylens-site
  mkdir -p "$site"
  tar -C "$site" -xJf "$BUNDLE"
  export PYTHONPATH=$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PYTHON" -c 'import torch, transformers, lancedb, faiss, pypdfium2, polylens; print(
    "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available(),
    "| transformers", transformers.__version__, "| lancedb", lancedb.__version__)'
  work=/tmp/page-encode  # model (4 GB, built on the GPU) and pages: not in the tree
  status=0
  timeout 300 "$PYTHON" bench/page_encode.py --device "$DEVICE" --dtype bfloat16 \
    --pages "$PAGES" --repeat 2 --work "$work" --out "$OUT/page_encode-cuda-bf16.json" || status=$?
  timeout 150 "$PYTHON" bench/page_encode.py --device "$DEVICE" --dtype auto \
    --pages "$PAGES" --repeat 2 --work "$work" --out "$OUT/page_encode-cuda-fp16.json" || status=$?
  return $status
}

run 2>&1 | tee "$OUT/page_encode-cuda.log"
exit "${PIPESTATUS[0]}"
