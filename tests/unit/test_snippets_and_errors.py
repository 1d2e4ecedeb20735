from __future__ import annotations

import pytest

from polylens._lazy import import_or_raise
from polylens.errors import MissingExtraError
from polylens.search.snippets import snippet


def test_snippet_centres_on_query_words() -> None:
    text = "filler " * 100 + "the conversion rate of the euro is fixed " + "filler " * 100
    out = snippet(text, "euro conversion rate", width=80)
    assert out is not None and "conversion rate" in out and out.startswith("…")
    assert len(out) <= 82


def test_snippet_of_short_text_is_the_text() -> None:
    assert snippet("  short\ntext ", "x") == "short text"
    assert snippet("", "x") is None


def test_missing_extra_names_the_install_command() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'polylens\[video\]'"):
        import_or_raise("definitely_not_installed_module", extra="video")


def test_snippet_prefers_the_window_with_the_most_distinct_terms() -> None:
    text = (
        "euro "
        + "filler " * 60
        + "rates "
        + "filler " * 60
        + "the fixed conversion rates of the euro were set "
        + "filler " * 60
    )
    out = snippet(text, "fixed euro conversion rates", width=90)
    assert out is not None and "fixed conversion rates of the euro" in out
