#!/usr/bin/env bash
# Install polylens with its test dependencies in .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
. .venv/bin/activate
python -m pytest -q "$@"
