"""An index whose data lives in Qdrant, end to end: the same hits as the embedded store,
the setting recorded, searches in another process, a run killed mid-write finished by the
next, and a clear message and exit code for every way a server can fail."""

from __future__ import annotations

import http.server
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _fault import cli_env, index_command, make_corpus, run_cli, search_command
from _invariants import check_consistent, files_under

from polylens.config import load_config
from polylens.engine import open_index
from polylens.errors import ConfigError, StoreUnavailableError

QUERIES = (
    "determine markers of the coins",
    "fixed conversion rates of the euro",
    "how large can a database get",
)


def _top(idx, query: str) -> list[tuple]:  # noqa: ANN001
    return [(h.path, h.page, round(h.confidence or 0.0, 3)) for h in idx.search(query, k=5)]


@pytest.mark.slow
def test_samples_rank_alike_in_both_stores(tmp_path: Path, samples_dir: Path) -> None:
    """The README's queries over the sample data: the same first five hits, with the same
    confidences, from LanceDB's read model and from Qdrant searching server-side."""
    settings = dict(image_model="none", text_model="minilm")
    spec = f"qdrant+local:{tmp_path / 'qdrant'}"
    with (
        open_index(tmp_path / "lance-idx", **settings) as lance,
        open_index(tmp_path / "qdrant-idx", store=spec, **settings) as qdrant,
    ):
        lance.add([samples_dir])
        qdrant.add([samples_dir])
        assert qdrant.warm() is False  # nothing to build: Qdrant answers every query
        for query in QUERIES:
            assert _top(qdrant, query) == _top(lance, query), query
        assert _top(qdrant, QUERIES[0])[0][0].endswith("page.png")
        groups = [sorted(m.path for m in g.items) for g in qdrant.duplicates()]
        assert groups == [sorted(m.path for m in g.items) for g in lance.duplicates()]
        assert any(p.endswith("coffee.jpg") for g in groups for p in g)  # hashes read back
    assert load_config(tmp_path / "qdrant-idx", {}).store == spec


def test_the_cli_records_the_store_and_a_later_process_searches_it(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "c", None, seed=3, images=4, texts=6, pdfs=2, copies=1)
    index_dir = tmp_path / "idx"
    spec = f"qdrant+local:{tmp_path / 'qdrant'}"
    done = run_cli([*index_command(index_dir, corpus.root), "--store", spec])
    assert done.returncode == 0, done.stderr[-2000:]
    assert f'store = "{spec}"' in (index_dir / "polylens.toml").read_text()
    assert not (index_dir / "lance").exists()  # nothing written to the embedded store
    check_consistent(index_dir, files_under(corpus.root))
    text = next(p for p in corpus.files() if p.suffix == ".txt").read_text().split()[:6]
    found = run_cli(search_command(index_dir, " ".join(text)))  # the store from the setting
    assert found.returncode == 0, found.stderr[-2000:]
    assert json.loads(found.stdout), "no hits"
    again = run_cli([*index_command(index_dir, corpus.root)])
    assert json.loads(again.stdout)["added"] == 0 and json.loads(again.stdout)["unchanged"] > 0


@pytest.mark.slow
def test_runs_killed_mid_write_are_finished_by_the_next(tmp_path: Path) -> None:
    """SIGKILL at points spread over a run (timed by a complete run of the same files
    into another store), each kill followed by the next kill's run; the last run
    completes and the index holds exactly the files, each with all its items and vectors."""
    corpus = make_corpus(tmp_path / "c", None, seed=5, images=40, texts=40, pdfs=6, copies=2)

    def command(name: str) -> list[str]:
        store = f"qdrant+local:{tmp_path / name / 'qdrant'}"
        return [*index_command(tmp_path / name / "idx", corpus.root), "--store", store]

    start = time.monotonic()
    assert run_cli(command("reference")).returncode == 0
    full = time.monotonic() - start
    killed = 0
    for share in (0.55, 0.7, 0.85, 0.95):
        proc = subprocess.Popen(command("killed"), stdout=subprocess.DEVNULL, env=cli_env())
        time.sleep(full * share)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    done = run_cli(command("killed"))
    assert done.returncode == 0, done.stderr[-2000:]
    check_consistent(tmp_path / "killed" / "idx", files_under(corpus.root))
    assert killed >= 2, f"only {killed} of 4 runs were still going at their kill point"


# -- a server that fails ------------------------------------------------------------------
@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def refusing_server() -> Iterator[int]:
    """Answers every request 401, as Qdrant does to a wrong API key."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _deny(self) -> None:
            body = (
                b'{"status":{"error":"Must provide an API key or an Authorization bearer token"}}'
            )
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = _deny

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _cli_search(index_dir: Path, store: str, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [*search_command(index_dir, "anything"), "--store", store]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**cli_env(), **env}
    )


def _small_index(tmp_path: Path) -> Path:
    corpus = make_corpus(tmp_path / "c", None, seed=1, images=1, texts=2, pdfs=0, copies=0)
    index_dir = tmp_path / "idx"
    done = run_cli(index_command(index_dir, corpus.root))
    assert done.returncode == 0, done.stderr[-2000:]
    return index_dir


def test_unreachable_server_is_named_with_its_exit_code(tmp_path: Path, closed_port: int) -> None:
    index_dir = _small_index(tmp_path)
    start = time.monotonic()
    done = _cli_search(index_dir, f"qdrant://127.0.0.1:{closed_port}")
    assert done.returncode == 6
    assert f"Qdrant server at http://127.0.0.1:{closed_port} is unreachable" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - start < 60


def test_a_server_that_never_answers_times_out(silent_server: int) -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="did not answer within 1 s"):
        from polylens.store.locations import parse_store
        from polylens.store.qdrant import QdrantStore

        QdrantStore(
            parse_store(f"qdrant://127.0.0.1:{silent_server}?timeout=1&prefix=t_")
        ).has_collection("items")
    assert time.monotonic() - start < 15


def test_a_wrong_api_key_is_named_and_never_shown(tmp_path: Path, refusing_server: int) -> None:
    index_dir = _small_index(tmp_path)
    secret = "s3cr3t-key-value-0123456789"
    done = _cli_search(
        index_dir,
        f"qdrant://127.0.0.1:{refusing_server}?api_key_env=QDRANT_TEST_KEY",
        QDRANT_TEST_KEY=secret,
    )
    assert done.returncode == 6, done.stderr
    assert "refused the API key ($QDRANT_TEST_KEY)" in done.stderr
    assert secret not in done.stderr + done.stdout


def test_store_urls_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    for bad, message in (
        ("qdrant://h:6333?api_key=abc", "must not carry the API key"),
        ("qdrant://user:pw@h:6333", "must not carry credentials"),
        ("qdrant://h:6333?shards=0", "shards"),
        ("qdrant://h:6333?colour=red", "unknown store URL parameter"),
        ("postgres://h/db", "unknown store"),
        ("qdrant+local:", "needs a directory"),
    ):
        with pytest.raises(ConfigError, match=message):
            open_index(tmp_path / "never", store=bad)
    assert not (tmp_path / "never").exists()
