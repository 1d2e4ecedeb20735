#!/usr/bin/env bash
# The main job on the shipped sample data: install, index, search. Offline-capable.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install --quiet torch==2.13.0        # the CPU wheel; pick your own build first for a GPU
pip install --quiet -e '.[server]'
INDEX=.polylens-demo
polylens index samples --index "$INDEX"
for query in "determine markers of the coins" "fixed conversion rates of the euro" "how large can a database get"; do
  echo
  echo "\$ polylens search \"$query\" -k 3"
  polylens search "$query" --index "$INDEX" -k 3
done
echo
echo "\$ polylens dupes"
polylens dupes --index "$INDEX"
echo
polylens status --index "$INDEX"
echo
# Last: the web page on the sample index (Ctrl-C to stop). Its URL is printed below.
exec polylens serve --index "$INDEX" --host 127.0.0.1 --port "${PORT:-8000}"
