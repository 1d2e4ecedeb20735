"""The real OpenAI-compatible server of the `ask` end-to-end tests: the one CI started
(``POLYLENS_TEST_LLM_URL`` / ``POLYLENS_TEST_LLM_MODEL``, see .ci/run), else one started
here with ``scripts/llm_test_server.sh`` and stopped by PID when the session ends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "llm_test_server.sh"


@contextmanager
def live_llm(workdir: Path) -> Iterator[tuple[str, str]]:
    url = os.environ.get("POLYLENS_TEST_LLM_URL", "").rstrip("/")
    model = os.environ.get("POLYLENS_TEST_LLM_MODEL", "")
    if url and model:
        yield url, model
        return
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("LLM_TEST_PORT", None)
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if started.returncode != 0:
        raise RuntimeError(f"the test LLM server did not start:\n{started.stderr[-3000:]}")
    values = dict(
        line.split("=", 1) for line in started.stdout.splitlines() if line.startswith("POLYLENS_")
    )
    try:
        yield values["POLYLENS_TEST_LLM_URL"], values["POLYLENS_TEST_LLM_MODEL"]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(workdir)], capture_output=True, timeout=60)
