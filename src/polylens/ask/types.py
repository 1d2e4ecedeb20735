"""What ``ask`` returns and streams: an answer, its cited sentences and its references."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Reference:
    """One evidence item as the answer cites it: ``[n]`` in the text is ``n`` here.

    ``sent_as``: ``image+text``, ``text`` or ``none`` (an abstained answer's closest
    items were never sent); ``round``: the search round that found it (1 = the question)."""

    n: int
    id: str
    path: str
    kind: str
    page: int | None
    chunk: int | None
    confidence: float | None
    snippet: str | None = None
    sent_as: str = "text"
    round: int = 1
    start: float | None = None
    end: float | None = None
    """A video segment's time range in seconds."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """A sentence of the answer, its citation markers taken out and kept as numbers.

    ``uncited``: a claim with no valid citation (the page flags it)."""

    text: str
    citations: tuple[int, ...] = ()
    uncited: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citations": list(self.citations), "uncited": self.uncited}


@dataclass(frozen=True)
class Round:
    """One search behind the answer: the query, and the evidence numbers it added."""

    query: str
    added: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "added": list(self.added)}


@dataclass
class Answer:
    """The answer to one question. ``abstained``: polylens or the model said the
    evidence does not answer it (``abstain_reason``: ``no_good_match`` when retrieval
    found nothing good and no model was called, ``model`` when the model said so).
    ``dropped_citations``: markers that named evidence the model was not given."""

    question: str
    answer: str
    sentences: list[Sentence] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    abstained: bool = False
    abstain_reason: str | None = None
    dropped_citations: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    model: str | None = None
    fallbacks: list[str] = field(default_factory=list)
    """What was given up to get an answer: ``text-only`` (the endpoint refused images),
    ``no-tools`` (it refused tool definitions)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "sentences": [s.to_dict() for s in self.sentences],
            "references": [r.to_dict() for r in self.references],
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "dropped_citations": self.dropped_citations,
            "usage": dict(self.usage),
            "rounds": [r.to_dict() for r in self.rounds],
            "model": self.model,
            "fallbacks": list(self.fallbacks),
        }

    @property
    def cited(self) -> list[int]:
        """Evidence numbers the answer cites, in order of first citation."""
        seen: dict[int, None] = {}
        for sentence in self.sentences:
            for n in sentence.citations:
                seen.setdefault(n, None)
        return list(seen)


EventType = Literal["evidence", "round", "delta", "citations", "done"]


@dataclass(frozen=True)
class AskEvent:
    """One step of a streamed answer.

    - ``evidence``: ``data["references"]``, the items chosen (before the model is called);
    - ``round``: ``data`` = the model asked for another search (``query``, ``added``);
    - ``delta``: ``data["text"]``, the next piece of the answer as the model writes it;
    - ``citations``: ``data`` = one finished sentence (``index``, ``text``, ``citations``,
      ``uncited``) - its citations are final once sent;
    - ``done``: ``data`` = the whole :class:`Answer` as a dict; ``answer`` holds it."""

    type: EventType
    data: dict[str, Any]
    answer: Answer | None = None
