#!/usr/bin/env bash
# bench/gpu.py on a CUDA machine: ViT-B/32 image embeddings per second, from the bare fp16
# forward pass to JPEG files -> vectors (polylens's decode path, pinned/uint8 variants, and
# nvjpeg decoding on the GPU), batches 256/512/1024, about 4 minutes in all.
#
# The lent GPU machine (one H200) has no network. Its own python3 (/opt/torch/.venv) has a
# CUDA torch (2.11+cu130 when last seen), transformers, numpy and pillow, which is all the
# image path of polylens needs (polylens itself runs from src/). It may lack torchvision,
# needed only for the gpu-decode row (torchvision.io.decode_jpeg on cuda = nvjpeg); PyPI's
# torchvision wheels are CUDA 13 builds that bundle libnvjpeg (~7 MB each). scikit-image
# (the source photos) is not there either. So:
#
#   here, once (~1 min, needs PyPI):   bash bench/gpu/images.sh pack
#       downloads torchvision for CPython 3.12 and torch 2.10-2.13 (one wheel per torch
#       minor, unzipped), copies scikit-image's sample photos, and packs both into
#       .bench-work/gpu-images-kit.tar.xz (~25 MB; the working tree is ~3.5 MB).
#   there, in one device call:
#       command: bash bench/gpu/images.sh
#       carry:   [".bench-work/gpu-images-kit.tar.xz"]        timeout_s: 540
#       It unpacks the kit to /tmp, uses the machine's own torchvision if it imports, else
#       the kit's for the machine's torch minor (none: the gpu-decode row is skipped, with
#       the reason), makes the 4,096 JPEGs there with PIL (~20 s on 16 cores: thousands of
#       camera-sized JPEGs are ~1 GB, too much to carry), builds the random ViT-B/32 there,
#       and writes $OUT/gpu-images-cuda.json (rows written as they finish) and the log.
#       Copy the JSON to bench/results/gpu-cuda.json to keep it.
#   here, a dry run of this wrapper on the CPU (catches shell and path errors):
#       DEVICE=cpu IMAGES=32 BATCH=16 PYTHON=.venv/bin/python bash bench/gpu/images.sh
#
# Knobs (environment): DEVICE (cuda), IMAGES (4096), BATCH (512; 256,512,1024 are all run
# when it is 512), PYTHON (python3), WORK (/tmp/polylens-gpu-bench), EXTRA (more flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
KIT=.bench-work/gpu-images-kit.tar.xz
TORCHVISION=${TORCHVISION:-"2.10:0.25.0 2.11:0.26.0 2.12:0.27.1 2.13:0.28.0"}

if [ "${1:-run}" = pack ]; then
  py=${PYTHON:-.venv/bin/python}
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/kit/photos" "$(dirname "$KIT")"
  for pair in $TORCHVISION; do
    minor=${pair%%:*} version=${pair#*:}
    # the machine's pip config pins a CPU torch and constraints: neither applies here
    PIP_CONSTRAINT= "$py" -m pip download -q --no-deps --only-binary=:all: \
      --python-version "${PYVER:-3.12}" --implementation cp --platform manylinux_2_28_x86_64 \
      --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$stage/wheels-$minor" "torchvision==$version"
    unzip -q -o "$stage/wheels-$minor"/torchvision-*.whl -d "$stage/kit/site-$minor"
  done
  "$py" - "$stage/kit/photos" <<'EOF'
import shutil, sys
from pathlib import Path
sys.path.insert(0, "bench")
from _gpu_pipeline import SKIMAGE_PHOTOS, source_photos
for path in source_photos(None):
    if path.name in SKIMAGE_PHOTOS:
        shutil.copy(path, sys.argv[1])
print("photos:", len(list(Path(sys.argv[1]).iterdir())))
EOF
  tar -C "$stage/kit" -cf - . | xz -6 -T2 >"$KIT.tmp"
  mv "$KIT.tmp" "$KIT"
  echo "packed torchvision $TORCHVISION and the photos"
  ls -l "$KIT"
  exit 0
fi

OUT=${OUT:-$PWD/.bench-work/gpu-out}
DEVICE=${DEVICE:-cuda}
IMAGES=${IMAGES:-4096}
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1 && [ -x /opt/torch/.venv/bin/python3 ]; then
  PYTHON=/opt/torch/.venv/bin/python3
fi
WORK=${WORK:-/tmp/polylens-gpu-bench}
mkdir -p "$OUT"

run() {
  [ -f "$KIT" ] || { echo "missing $KIT: run 'bash $0 pack' here and carry it"; return 2; }
  kit=/tmp/polylens-gpu-kit
  rm -rf "$kit" && mkdir -p "$kit"
  tar -C "$kit" -xJf "$KIT"
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader \
    || true
  nproc || true
  minor=$("$PYTHON" -c 'import torch; print(".".join(torch.__version__.split(".")[:2]))')
  if "$PYTHON" -c 'import torchvision' >/dev/null 2>&1; then
    echo "torchvision: the machine's own"
  elif [ -d "$kit/site-$minor" ]; then
    # only if it loads: transformers picks its image processors' backend by torchvision's
    # presence, and a torchvision that is present but broken would fail the model load
    if PYTHONPATH=$kit/site-$minor:$PYTHONPATH "$PYTHON" -c 'import torchvision' 2>"$kit/tv.err"
    then
      export PYTHONPATH=$kit/site-$minor:$PYTHONPATH
      echo "torchvision: the kit's, for torch $minor"
    else
      echo "torchvision: the kit's for torch $minor does not load; gpu-decode is skipped:"
      tail -n 1 "$kit/tv.err"
    fi
  else
    echo "torchvision: none for torch $minor (kit has: $TORCHVISION); gpu-decode is skipped"
  fi
  "$PYTHON" -c 'import torch, transformers, PIL, numpy; print(
    "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available(),
    "| transformers", transformers.__version__, "| pillow", PIL.__version__)'
  status=0
  # --deadline: no row starts after 360 s; a hang dumps its traceback at 450 s
  timeout 500 "$PYTHON" bench/gpu.py --device "$DEVICE" --images "$IMAGES" \
    ${BATCH:+--batch "$BATCH"} --photos "$kit/photos" --work "$WORK" --lock "" \
    --deadline 360 --out "$OUT/gpu-images-$DEVICE.json" ${EXTRA:-} || status=$?
  nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader || true
  return $status
}

run 2>&1 | tee "$OUT/gpu-images-$DEVICE.log"
exit "${PIPESTATUS[0]}"
