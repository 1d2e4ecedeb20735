"""Fault injection helpers: a generated mixed corpus, seeded mutations, killed CLI runs,
and a full disk or read-only index directory (real mounts where allowed, else simulated).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _invariants import files_under
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FAKE_MODELS = ("--image-model", "fake-clip", "--text-model", "fake-text")
TABLES = ("files", "items", "vec_image", "vec_text")

_WORDS = (
    "lantern harbour quartz meadow violet engine ledger summit copper walrus orbit basil "
    "thunder pixel marble saffron glacier tulip cobalt anchor falcon cedar prism velvet "
    "nebula rivet oyster maple canyon ember sonnet kettle jasper bramble atlas"
).split()


# -- corpus ------------------------------------------------------------------------------
def _picture(rng: random.Random, width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Smooth gradients plus a few blocks: compresses like a photo, differs per seed."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0, 255)
        channels.append((a * x + b * y + c) % 256)
    pixels = np.stack(channels, axis=-1).astype(np.uint8)
    for _ in range(rng.randint(0, 4)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        pixels[y0 : y0 + rng.randint(1, 40), x0 : x0 + rng.randint(1, 40)] = [
            rng.randrange(256) for _ in range(3)
        ]
    image = Image.fromarray(pixels, "RGB")
    return image.convert(mode) if mode != "RGB" else image


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def write_image(path: Path, rng: random.Random) -> None:
    side = rng.choice([8, 24, 64, 120, 200, 320, 640, 900])
    width = max(4, int(side * rng.uniform(0.5, 1.5)))
    height = max(4, int(side * rng.uniform(0.5, 1.5)))
    fmt = rng.choice(["PNG", "JPEG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
    suffix = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
    mode = "L" if rng.random() < 0.15 else "RGB"
    if fmt == "PNG" and rng.random() < 0.3:
        mode = "RGBA"
    image = _picture(rng, width, height, mode)
    path = path.with_suffix(suffix.get(fmt, ".tif"))
    image.save(path, format=fmt)


def write_pdf(path: Path, rng: random.Random, pages: int | None = None) -> None:
    """A multi-page PDF of pictures (no text layer), saved by Pillow."""
    count = pages or rng.randint(1, 12)
    frames = [_picture(rng, rng.randint(100, 400), rng.randint(100, 400)) for _ in range(count)]
    frames[0].save(path.with_suffix(".pdf"), format="PDF", save_all=True, append_images=frames[1:])


def write_text(path: Path, rng: random.Random) -> None:
    parts = []
    for _ in range(rng.randint(1, 8)):
        if rng.random() < 0.5:
            parts.append(f"# {_words(rng, 3).title()}")
        parts.append(_words(rng, rng.randint(5, 400)) + ".")
    suffix = ".md" if rng.random() < 0.5 else ".txt"
    path.with_suffix(suffix).write_text("\n\n".join(parts) + "\n", encoding="utf-8")


@dataclass
class Corpus:
    """A folder of generated files and the seeded mutations applied to it."""

    root: Path
    rng: random.Random
    log: list[str] = field(default_factory=list)
    counter: int = 0

    def _new_path(self, kind: str) -> Path:
        self.counter += 1
        folder = self.root / self.rng.choice(["a", "b", "a/deep", "c"])
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{kind}{self.counter:04d}"

    def add(self, kind: str | None = None) -> None:
        kind = kind or self.rng.choice(["img", "img", "img", "txt", "txt", "pdf"])
        path = self._new_path(kind)
        {"img": write_image, "txt": write_text, "pdf": write_pdf}[kind](path, self.rng)
        self.log.append(f"add {kind}")

    def files(self) -> list[Path]:
        return sorted(Path(p) for p in files_under(self.root))

    def copy(self) -> None:
        source = self.rng.choice(self.files())
        target = self._new_path("copy").with_suffix(source.suffix)
        shutil.copyfile(source, target)
        self.log.append(f"copy {source.name} -> {target.name}")

    def delete(self) -> None:
        victim = self.rng.choice(self.files())
        victim.unlink()
        self.log.append(f"delete {victim.name}")

    def move(self) -> None:
        source = self.rng.choice(self.files())
        target = self._new_path("moved").with_suffix(source.suffix)
        os.replace(source, target)
        self.log.append(f"move {source.name} -> {target.name}")

    def modify(self) -> None:
        victim = self.rng.choice(self.files())
        suffix = victim.suffix
        if suffix in (".md", ".txt"):
            with victim.open("a", encoding="utf-8") as handle:
                handle.write(f"\n\n{_words(self.rng, 30)}.\n")
        elif suffix == ".pdf":
            write_pdf(victim, self.rng)
        else:
            victim.unlink()
            write_image(victim.with_suffix(""), self.rng)  # may change the format too
        self.log.append(f"modify {victim.name}")

    def mutate(self, n: int) -> None:
        for _ in range(n):
            op = self.rng.choice([self.add, self.copy, self.delete, self.move, self.modify])
            op()


def make_corpus(
    root: Path,
    samples: Path | None,
    *,
    seed: int,
    images: int,
    texts: int,
    pdfs: int,
    copies: int,
) -> Corpus:
    corpus = Corpus(root, random.Random(seed))
    root.mkdir(parents=True)
    for kind, count in (("img", images), ("txt", texts), ("pdf", pdfs)):
        for _ in range(count):
            corpus.add(kind)
    if samples is not None:  # a real PDF with a text layer, real prose
        shutil.copytree(samples / "pdf", root / "samples-pdf")
        shutil.copytree(samples / "text", root / "samples-text")
    for _ in range(copies):
        corpus.copy()
    return corpus


# -- running and killing the CLI ---------------------------------------------------------
def index_command(index_dir: Path, *paths: Path, ocr: bool = False) -> list[str]:
    return [
        sys.executable,
        "-m",
        "polylens",
        "index",
        *(str(p) for p in paths),
        "--index",
        str(index_dir),
        *FAKE_MODELS,
        "--ocr" if ocr else "--no-ocr",
        "--json",
    ]


def search_command(index_dir: Path, query: str) -> list[str]:
    return [sys.executable, "-m", "polylens", "search", query, "--index", str(index_dir), "--json"]


def cli_env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }


def run_cli(cmd: list[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=cli_env(), check=False
    )


def run_index(index_dir: Path, *paths: Path, ocr: bool = False) -> dict:
    done = run_cli(index_command(index_dir, *paths, ocr=ocr))
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def store_versions(index_dir: Path) -> int:
    """Commits so far, over every table: each store write adds one manifest."""
    total = 0
    for table in TABLES:
        versions = index_dir / "lance" / f"{table}.lance" / "_versions"
        with contextlib.suppress(OSError):
            total += sum(1 for p in os.scandir(versions) if p.name.endswith(".manifest"))
    return total


@dataclass
class KillPoint:
    """Kill after ``versions`` more store commits (then ``delay`` s more), or, when
    ``versions`` is None, ``delay`` seconds after the start."""

    versions: int | None
    delay: float

    def describe(self) -> str:
        if self.versions is None:
            return f"after {self.delay:.2f}s"
        return f"after +{self.versions} commits +{self.delay * 1000:.0f}ms"


def run_and_kill(cmd: list[str], index_dir: Path, point: KillPoint, *, limit: float = 240) -> bool:
    """Start ``cmd``, SIGKILL it at ``point``. True if it was killed, False if it finished
    first (then it must have succeeded)."""
    start_versions = store_versions(index_dir)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(), text=True
    )
    try:
        deadline = time.monotonic() + limit
        if point.versions is not None:
            while store_versions(index_dir) < start_versions + point.versions:
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.003)
        end = time.monotonic() + point.delay
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.003)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        _, err = proc.communicate()
        assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-3000:]}"
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- a full disk, a read-only directory --------------------------------------------------
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


def _umount(path: Path) -> None:
    for _ in range(50):
        done = subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
        if done.returncode == 0:
            return
        time.sleep(0.1)  # busy: a child may still be closing files
    raise RuntimeError(f"cannot unmount {path}: {done.stderr!r}")


def can_mount(scratch: Path) -> bool:
    """Whether this process may mount a tmpfs (root in a sandbox or VM; not in most CI)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = scratch / f"mount-probe-{uuid.uuid4().hex[:8]}"
    probe.mkdir(parents=True)
    try:
        _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe))
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
        return False
    _umount(probe)
    return True


@contextlib.contextmanager
def tmpfs(path: Path, size_kb: int) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path))
    try:
        yield
    finally:
        _umount(path)


def resize_tmpfs(path: Path, size_kb: int) -> None:
    _mount("-o", f"remount,size={size_kb}k", str(path))


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Bind-mount ``path`` read-only over itself: even root cannot write there."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,ro,bind", str(path))
        yield
    finally:
        _umount(path)


def enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# -- a simulated full disk: the store's writes fail with ENOSPC after a budget -------------
class DiskBudget:
    """Store writes allowed before the disk is "full"; ``None``: unlimited."""

    def __init__(self, writes: int | None) -> None:
        self.left = writes
        self.spent = 0

    def spend(self) -> None:
        if self.left is not None:
            if self.left <= 0:
                raise enospc()
            self.left -= 1
        self.spent += 1


class _Counted:
    """A LanceDB object whose writes spend the budget first, so the failure travels the
    same path as a real one: out of the storage engine, through LanceStore's error mapping."""

    _WRITES = frozenset({"add", "delete", "optimize", "create_index", "create_table"})

    def __init__(self, target: object, budget: DiskBudget) -> None:
        self._target = target
        self._budget = budget

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._target, name)
        if name == "merge_insert":
            return lambda *a, **k: _Counted(attr(*a, **k), self._budget)
        if name == "open_table":
            return lambda *a, **k: _Counted(attr(*a, **k), self._budget)
        if name in self._WRITES or name == "execute":

            def write(*args: object, **kwargs: object) -> object:
                self._budget.spend()
                result = attr(*args, **kwargs)
                return _Counted(result, self._budget) if name == "create_table" else result

            return write
        if callable(attr) and name.startswith("when_"):
            return lambda *a, **k: _Counted(attr(*a, **k), self._budget)
        return attr


def budgeted_store(directory: Path, budget: DiskBudget, cls: type | None = None):  # noqa: ANN201
    """A LanceStore (``cls``: the class itself, while a test patches the module's name)."""
    from polylens.store.lance import LanceStore

    store = (cls or LanceStore)(directory)
    store._db = _Counted(store._db, budget)  # type: ignore[assignment]
    return store
