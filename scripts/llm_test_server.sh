#!/usr/bin/env bash
# A real OpenAI-compatible vision chat server for end-to-end tests of `ask`, offline:
# `transformers serve` on a tiny random-weight LLaVA built locally (tests/_tiny_llava.py).
#
#   scripts/llm_test_server.sh start DIR   build DIR/model if missing, start the server,
#                                          wait for GET /v1/models, print the two lines
#                                          POLYLENS_TEST_LLM_URL=... and POLYLENS_TEST_LLM_MODEL=...
#   scripts/llm_test_server.sh stop DIR    stop it (TERM, then KILL after 10 s)
#
# Use:  eval "$(scripts/llm_test_server.sh start /tmp/llm)"
#       export POLYLENS_TEST_LLM_URL POLYLENS_TEST_LLM_MODEL
# Needs: pip install 'transformers[serving]' (fastapi, uvicorn, openai, accelerate).
# Env:   LLM_TEST_PORT (must be free if set; unset: 8765 if free, else any free port),
#        LLM_TEST_START_TIMEOUT (default 120 s), PYTHON (default .venv/bin/python).
# Files: DIR/model (checkpoint), DIR/server.pid, DIR/server.log, DIR/server.env.
# The server is pinned to the model: requests must send "model" equal to
# POLYLENS_TEST_LLM_MODEL (or no "model"); any other name is answered 400.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
CMD="$1"
mkdir -p "$2"
DIR="$(cd "$2" && pwd)"
PID_FILE="$DIR/server.pid"
LOG_FILE="$DIR/server.log"
ENV_FILE="$DIR/server.env"
MODEL="$DIR/model"

alive() {  # alive PID: the process exists and is a `transformers serve`
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "transformers.* serve "
}

running() {  # running PID: the process exists and is not a zombie (awaiting its reaper)
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != "Z" ]
}

build_model() {
  echo "building tiny LLaVA in $MODEL" >&2
  rm -rf "$MODEL.tmp"
  "$PY" - "$REPO/tests" "$MODEL.tmp" <<'EOF'
import pathlib, sys
sys.path.insert(0, sys.argv[1])
from _tiny_llava import make_tiny_llava
make_tiny_llava(pathlib.Path(sys.argv[2]))
EOF
  rm -rf "$MODEL"
  mv "$MODEL.tmp" "$MODEL"  # complete or absent, never half-written
}

pick_port() {  # LLM_TEST_PORT if set (it must be free); else 8765 if free; else any free port
  "$PY" - "${LLM_TEST_PORT:-}" <<'EOF'
import socket, sys
def free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]
wanted = sys.argv[1]
if wanted:
    if not free(int(wanted)):
        sys.exit(f"LLM_TEST_PORT={wanted} is in use")
    print(wanted)
else:
    print(free(8765) or free(0))
EOF
}

wait_ready() {  # wait_ready PID PORT: GET /v1/models answers 200 and lists our model
  # A pinned model is loaded before uvicorn binds; the listing tells our server
  # from anything else that answers on the port.
  "$PY" - "$1" "http://127.0.0.1:$2/v1/models" "$MODEL" "${LLM_TEST_START_TIMEOUT:-120}" <<'EOF'
import json, os, sys, time, urllib.request
pid, url, model, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"server process {pid} exited")
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            ids = [m.get("id") for m in json.load(r).get("data", [])]
        if model in ids:
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.25)
sys.exit(f"no answer listing {model} from {url} within {timeout:.0f} s")
EOF
}

start() {
  if [ -f "$PID_FILE" ] && alive "$(cat "$PID_FILE")" && [ -f "$ENV_FILE" ]; then
    echo "already running (pid $(cat "$PID_FILE"))" >&2
    cat "$ENV_FILE"
    return 0
  fi
  rm -f "$PID_FILE" "$ENV_FILE"
  [ -x "$PY" ] || { echo "no python at $PY (set PYTHON=...)" >&2; exit 1; }
  "$PY" -c "import fastapi, uvicorn, openai, accelerate" 2>/dev/null || {
    echo "transformers serve needs its extra: $PY -m pip install 'transformers[serving]'" >&2
    exit 1
  }
  [ -f "$MODEL/config.json" ] || build_model

  local port pid
  port="$(pick_port)"

  # Offline: the model is a local path; nothing may reach for the hub.
  # One torch thread: the model is tiny, and test machines are small and shared.
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" \
    nohup "$PY" -m transformers.cli.transformers serve "$MODEL" \
      --host 127.0.0.1 --port "$port" --device cpu \
      </dev/null >"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"

  if ! wait_ready "$pid" "$port"; then
    echo "--- last lines of $LOG_FILE ---" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    stop
    exit 1
  fi

  {
    echo "POLYLENS_TEST_LLM_URL=http://127.0.0.1:$port/v1"
    echo "POLYLENS_TEST_LLM_MODEL=$MODEL"
  } >"$ENV_FILE"
  cat "$ENV_FILE"
}

stop() {
  [ -f "$PID_FILE" ] || { echo "not running (no $PID_FILE)" >&2; return 0; }
  local pid
  pid="$(cat "$PID_FILE")"
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      echo "pid $pid ignored TERM for 10 s; sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        running "$pid" || break
        sleep 0.1
      done
    fi
  fi
  rm -f "$PID_FILE" "$ENV_FILE"
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
