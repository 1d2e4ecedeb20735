"""`ask` end to end against a real OpenAI-compatible server: `transformers serve` on a
tiny random-weight LLaVA (tests/_llm_server.py). Its answers are gibberish; what is
tested is the protocol: pictures and text go out as data URLs, the reply streams back
(without `data: [DONE]`), and the CLI, the HTTP stream and the page turn it into an
answer with references."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _ask_corpus import EURO_QUESTION

pytestmark = pytest.mark.slow


def _ask(index: Path, llm: tuple[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    url, model = llm
    env = {**os.environ, "POLYLENS_LLM_URL": url, "POLYLENS_LLM_MODEL": model, "NO_COLOR": "1"}
    env.pop("POLYLENS_LLM_API_KEY", None)
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "polylens", "ask", EURO_QUESTION, "--index", str(index), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_streams_an_answer_from_a_real_server(
    ask_index_dir: Path, live_llm: tuple[str, str]
) -> None:
    result = _ask(ask_index_dir, live_llm)
    assert result.returncode == 0, result.stderr
    answer, _, references = result.stdout.partition("References")
    assert answer.strip() and references.strip().startswith("[1] ")
    assert "euro.pdf  p.2" in references
    assert "with a picture" in result.stderr  # the page went out as an image


def test_cli_json_from_a_real_server(ask_index_dir: Path, live_llm: tuple[str, str]) -> None:
    result = _ask(ask_index_dir, live_llm, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answer"] and answer["model"] == live_llm[1]
    assert answer["references"][0]["sent_as"] == "image+text"
    assert answer["usage"]["completion_tokens"] > 0
