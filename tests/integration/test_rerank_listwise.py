"""`rerank = "llm"`: the ask endpoint's model orders the first hits (RankGPT style),
through the search path users hit, against the scripted endpoint."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from _ask_corpus import LLM_ENV
from _fake_llm import FakeLLM

from polylens.ask.client import TextPiece
from polylens.ask.listwise import ListwiseReranker, parse_order
from polylens.ask.settings import AskSettings
from polylens.engine import open_index
from polylens.eval.datasets import Doc, EvalDataset, Query
from polylens.eval.session import evaluate_dataset


def test_parse_order_keeps_valid_numbers_once_then_the_rest() -> None:
    assert parse_order("[3] > [1] > [3] > [9]", 4) == [2, 0, 1, 3]
    assert parse_order("no idea", 3) == [0, 1, 2]
    assert parse_order("[0] > [2]", 2) == [1, 0]


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)


def _search(index: Path, depth: int, query: str = "euro currency symbol") -> list:
    with open_index(index, create=False, rerank="llm", rerank_depth=depth) as idx:
        return idx.search(query, k=depth)


def test_the_model_order_replaces_the_fused_order(
    ask_index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_index(ask_index_dir, create=False) as idx:
        fused = [h.id for h in idx.search("euro currency symbol", k=5)]
    with FakeLLM([{"text": "[5] > [4] > [3] > [2] > [1]"}]) as fake:
        monkeypatch.setenv("POLYLENS_LLM_URL", fake.url)
        monkeypatch.setenv("POLYLENS_LLM_MODEL", "m")
        hits = _search(ask_index_dir, 5)
    assert [h.id for h in hits] == fused[::-1]
    (request,) = fake.requests
    prompt = request["messages"][1]["content"]
    assert prompt.count("<passage>") == 5 and "euro currency symbol" in prompt


def test_long_lists_are_ranked_in_sliding_windows_from_the_bottom() -> None:
    """30 passages, the model putting "passage 29" first wherever it sees it: windows
    [10, 30) then [0, 20), so the last passage climbs to the top in two steps."""
    calls: list[int] = []

    class Client:
        def __init__(self, settings: AskSettings) -> None: ...

        def chat(self, messages: list, **_: object):  # noqa: ANN201
            content = messages[1]["content"]
            calls.append(content.count("<passage>"))
            best = re.search(r"\[(\d+)\] <passage>\npassage 29\n", content)
            yield TextPiece(f"[{best.group(1)}]" if best else "[1]")

        def close(self) -> None: ...

    reranker = ListwiseReranker(AskSettings(url="http://x/v1", model="m"), client_factory=Client)
    scores = reranker.score("q", [f"passage {i}" for i in range(30)])
    order = sorted(range(30), key=lambda i: -scores[i])
    assert calls == [20, 20]
    assert order[:3] == [29, 0, 1] and order[-1] == 28


def test_an_endpoint_that_fails_leaves_fused_order_with_a_warning(
    ask_index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_index(ask_index_dir, create=False) as idx:
        fused = [h.id for h in idx.search("euro currency symbol", k=5)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("POLYLENS_LLM_URL", f"http://127.0.0.1:{closed}/v1")
    monkeypatch.setenv("POLYLENS_LLM_MODEL", "m")
    hits = _search(ask_index_dir, 5)
    assert [h.id for h in hits] == fused
    assert any("reranker failed" in w and "cannot be reached" in w for w in hits.warnings)


def test_without_an_endpoint_the_reranker_says_why(ask_index_dir: Path) -> None:
    hits = _search(ask_index_dir, 5)
    assert hits and any("reranker llm" in w and "POLYLENS_LLM_URL" in w for w in hits.warnings)


def test_eval_reports_the_listwise_gain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = {
        "d1": Doc("alpha beta alpha beta gamma, alpha beta again"),
        "d2": Doc("alpha beta delta"),
        "d3": Doc("epsilon zeta eta theta"),
        "d4": Doc("iota kappa lambda mu"),
    }
    dataset = EvalDataset("tiny", corpus, {"q1": Query("alpha beta")}, {"q1": {"d2": 1}})
    with FakeLLM(default={"text": "[2] > [1]"}) as fake:
        monkeypatch.setenv("POLYLENS_LLM_URL", fake.url)
        monkeypatch.setenv("POLYLENS_LLM_MODEL", "m")
        report, _ = evaluate_dataset(
            dataset,
            work_dir=tmp_path / "work",
            settings={"image_model": "none", "text_model": "none", "ocr": False, "rerank": "llm"},
            metrics=["ndcg@10", "mrr@10"],
        )
    by_name = {r.name: r.metrics for r in report.results}
    plain, reranked = by_name["bm25"], by_name["bm25+rerank"]
    assert plain["mrr@10"] == 0.5 and reranked["mrr@10"] == 1.0
    assert fake.requests
