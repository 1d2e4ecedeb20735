"""`.polylensignore`: gitignore patterns in any indexed folder leave files out of the walk."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

import polylens
from polylens.ingest import sources
from polylens.ingest.sources import FoundFile, WalkProblem, walk

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def _tree(root: Path, files: Iterable[str], ignore: dict[str, str] | None = None) -> Path:
    """Files (empty unless text is wanted) and ignore files, keyed by their folder."""
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name}\n")
    for folder, text in (ignore or {}).items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / ".polylensignore").write_text(text)
    return root


def _found(*roots: Path) -> set[str]:
    """Walked files, relative to the first root; a problem fails the test."""
    entries = list(walk([str(r) for r in roots]))
    problems = [e for e in entries if isinstance(e, WalkProblem)]
    assert not problems, problems
    base = str(roots[0])
    return {os.path.relpath(e.path, base) for e in entries if isinstance(e, FoundFile)}


def test_root_level_patterns(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        ["a.txt", "debug.log", "sub/trace.log", "top.md", "sub/top.md", "sub/deep/keep.md"],
        {".": "*.log\n/top.md\n"},
    )
    # *.log matches at any depth; /top.md only next to the ignore file.
    assert _found(root) == {"a.txt", "sub/top.md", "sub/deep/keep.md"}


def test_nested_ignore_file_applies_to_its_folder_and_below(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        ["notes.md", "local.txt", "sub/notes.md", "sub/local.txt", "sub/x/local.txt", "other/a.md"],
        {".": "*.tmp\n", "sub": "*.md\n/local.txt\n"},
    )
    (root / "junk.tmp").write_text("x")
    (root / "sub" / "x" / "junk.tmp").write_text("x")
    # Patterns are relative to sub/ and only apply there; the root's patterns still do.
    assert _found(root) == {"notes.md", "local.txt", "other/a.md", "sub/x/local.txt"}


def test_directory_pattern_prunes_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(
        tmp_path,
        ["src/a.txt", "build/out.txt", "build/deep/more.txt", "src/build/gen.txt", "docs/build"],
        {".": "build/\n"},
    )
    listed: list[str] = []
    real_scandir = os.scandir

    def spy(path):  # type: ignore[no-untyped-def]
        listed.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(sources.os, "scandir", spy)
    # A *file* named build is not matched by the folder-only pattern.
    assert _found(root) == {"src/a.txt", "docs/build"}
    assert not [p for p in listed if "build" in Path(p).parts]  # never entered


def test_negation_re_includes_and_deeper_files_win(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        ["a.txt", "keep.txt", "b.md", "sub/c.txt", "sub/wanted.txt", "cache/x/keep.txt"],
        {".": "*.txt\n!keep.txt\ncache/\n!cache/x/keep.txt\n", "sub": "!wanted.txt\n"},
    )
    # A deeper file re-includes; a file in an ignored folder cannot be (as in git).
    assert _found(root) == {"keep.txt", "b.md", "sub/wanted.txt"}


def test_comments_and_blank_lines(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        ["secret.txt", "#hash.txt", "plain.txt", "drop.txt"],
        {".": "# secret.txt\n\n   \n\\#hash.txt\ndrop.txt\n"},
    )
    assert _found(root) == {"secret.txt", "plain.txt"}


def test_explicit_roots_are_always_walked(tmp_path: Path) -> None:
    root = _tree(tmp_path, ["notes.md", "sub/a.md", "sub/b.txt"], {".": "*.md\n"})
    assert _found(root) == {"sub/b.txt"}
    # A file given as a root is yielded; a subfolder given as a root does not read the
    # ignore file of its parent folder.
    assert _found(root, root / "notes.md") == {"sub/b.txt", "notes.md"}
    assert _found(root / "sub") == {"a.md", "b.txt"}


def test_undecodable_ignore_file_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    root = _tree(tmp_path, ["a.txt", "b.log", "sub/c.log"], {"sub": "*.log\n"})
    bad = root / ".polylensignore"
    bad.write_bytes(b"*.txt\n\xff\xfe\xfa not utf-8\n")
    entries = list(walk([str(root)]))
    problems = [e for e in entries if isinstance(e, WalkProblem)]
    assert [p.path for p in problems] == [str(bad)]
    assert "not valid UTF-8" in problems[0].reason
    # Its patterns are not applied; the other ignore file still is.
    found = {e.path for e in entries if isinstance(e, FoundFile)}
    assert found == {str(root / "a.txt"), str(root / "b.log")}


def test_unreadable_ignore_file_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    root = _tree(tmp_path, ["a.txt", "sub/b.txt"])
    (root / "sub" / ".polylensignore").mkdir()  # open() fails even for root
    entries = list(walk([str(root)]))
    problems = [e for e in entries if isinstance(e, WalkProblem)]
    assert [p.path for p in problems] == [str(root / "sub" / ".polylensignore")]
    assert problems[0].reason.startswith("cannot read ignore file")
    assert {e.path for e in entries if isinstance(e, FoundFile)} == {
        str(root / "a.txt"),
        str(root / "sub" / "b.txt"),
    }


def test_invalid_pattern_line_is_reported_and_the_others_apply(tmp_path: Path) -> None:
    root = _tree(tmp_path, ["a.txt", "b.log"], {".": "!\n*.log\n"})
    entries = list(walk([str(root)]))
    problems = [e for e in entries if isinstance(e, WalkProblem)]
    assert len(problems) == 1 and "line 1" in problems[0].reason
    assert {e.path for e in entries if isinstance(e, FoundFile)} == {str(root / "a.txt")}


def test_ignored_name_that_is_not_utf8_is_not_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path, ["a.txt"], {".": "*.log\n"})
    try:
        fd = os.open(os.fsencode(str(root)) + b"/caf\xe9.log", os.O_CREAT | os.O_WRONLY)
    except OSError:
        pytest.skip("this file system does not accept a name that is not UTF-8")
    os.close(fd)
    assert _found(root) == {"a.txt"}


def test_each_ignore_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [f"d{i}/f{j}.txt" for i in range(5) for j in range(40)]
    root = _tree(tmp_path, files, {".": "*.log\n", "d1": "f1*.txt\n", "d3": "!x\n"})
    calls: list[str] = []
    real = sources._read_ignore_file

    def counting(path: str):  # type: ignore[no-untyped-def]
        calls.append(path)
        return real(path)

    monkeypatch.setattr(sources, "_read_ignore_file", counting)
    found = _found(root)
    assert len(found) == 200 - 11  # f1.txt and f10..f19.txt in d1
    assert sorted(calls) == sorted(
        str(root / d / ".polylensignore") if d != "." else str(root / ".polylensignore")
        for d in (".", "d1", "d3")
    )


def test_shipped_samples_ignore_file_leaves_out_only_the_licences() -> None:
    everything = {
        str(p.relative_to(SAMPLES))
        for p in SAMPLES.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(SAMPLES).parts)
    }
    assert "LICENSES.md" in everything
    assert _found(SAMPLES) == everything - {"LICENSES.md"}


def test_newly_ignored_file_leaves_the_index(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "gliders.md").write_text("# Gliders\n\nSoaring on thermals above the ridge.\n")
    (folder / "coffee.txt").write_text("Espresso, crema and a well tamped puck of coffee.\n")
    (folder / "licence.txt").write_text("Permission is hereby granted, free of charge.\n")
    licence = str(folder / "licence.txt")
    with polylens.open(
        tmp_path / "index", image_model="fake-clip", text_model="fake-text", ocr=False
    ) as idx:
        first = idx.add([folder])
        assert (first.added, first.failed) == (3, 0)
        assert licence in {h.path for h in idx.search("permission granted", k=10)}

        (folder / ".polylensignore").write_text("licence.txt\n")
        summary = idx.add([folder])
        assert (summary.removed, summary.failed, summary.unchanged) == (1, 0, 2)
        for query in ("permission granted", "free of charge", "coffee", "gliders"):
            hits = idx.search(query, k=10)
            assert licence not in {h.path for h in hits}
            assert not [h for h in hits if licence in h.other_paths]
        assert idx.search("gliders thermals", k=1)[0].path == str(folder / "gliders.md")

        # Un-ignoring brings it back.
        (folder / ".polylensignore").write_text("# nothing ignored\n")
        again = idx.add([folder])
        assert (again.added, again.removed) == (1, 0)
        assert licence in {h.path for h in idx.search("permission granted", k=10)}
