#!/usr/bin/env bash
# Create .venv and install polylens with its test dependencies (CPU torch).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install --quiet torch==2.13.0        # CPU wheel; an unpinned torch pulls a multi-GB CUDA build
pip install --quiet -e '.[dev]'
