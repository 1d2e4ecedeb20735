"""Answer a question from an index: search, choose evidence, ask the model, check citations.

The flow is one generator of :class:`AskEvent` so the CLI, the HTTP stream and the
Python API share it; :func:`collect` runs it to the end for a plain answer. Nothing
but the chosen evidence goes to the endpoint, and nothing is sent at all when
retrieval found no good match.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from polylens.ask.citations import complete_prefix, parse_answer, parse_sentence
from polylens.ask.client import ChatClient, TextPiece, ToolCall, Usage
from polylens.ask.evidence import choose_evidence
from polylens.ask.pictures import data_url, fit_jpeg
from polylens.ask.prompt import (
    SEARCH_TOOL,
    EvidenceBlock,
    build_messages,
    could_be_search,
    says_insufficient,
    search_request,
)
from polylens.ask.settings import AskSettings
from polylens.ask.types import Answer, AskEvent, Reference, Round
from polylens.errors import EndpointRejectedError, InputError, PolylensError
from polylens.types import Hit, ItemInfo, SearchResults

log = logging.getLogger("polylens.ask")

CANDIDATES = 30
"""Hits a search hands to evidence selection."""
CLOSEST_SHOWN = 5
"""Items an abstained answer lists as the closest ones."""
MAX_QUESTION_CHARS = 2000
PICTURE_KINDS = ("image", "page", "video")
REFUSALS = (400, 413, 415, 422)
"""Statuses after which a request is retried with less (no pictures, no tools)."""


class Library(Protocol):
    """What ``ask`` needs of an index (``polylens.Index`` is one)."""

    def search(self, query: str | None = None, *, k: int = 10) -> SearchResults: ...

    def item(self, item_id: str) -> ItemInfo: ...

    def item_image(self, item_id: str, *, max_side: int | None = None) -> Any: ...


@dataclass
class _Evidence:
    hit: Hit
    block: EvidenceBlock
    round: int


@dataclass
class _State:
    question: str
    evidence: list[_Evidence] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    sentences_sent: int = 0


class Asker:
    def __init__(
        self,
        library: Library,
        settings: AskSettings,
        *,
        client_factory: Callable[[AskSettings], ChatClient] = ChatClient,
    ) -> None:
        self.library = library
        self.settings = settings
        self._client_factory = client_factory

    # -- evidence, no model ----------------------------------------------------------
    def gather(self, question: str) -> tuple[SearchResults, list[Hit]]:
        """The search results and the evidence chosen from them (no model involved):
        what ``polylens eval`` measures, and what ``ask`` would send."""
        question = check_question(question)
        results = self.library.search(question, k=CANDIDATES)
        if results.no_good_match:
            return results, []
        return results, self._choose(results, exclude=[])

    def _choose(self, hits: list[Hit], exclude: list[Hit]) -> list[Hit]:
        texts = {hit.id: self._text(hit.id) for hit in [*hits, *exclude]}
        return choose_evidence(
            hits,
            max_evidence=self.settings.max_evidence,
            weak_below=self.settings.weak_below,
            texts=texts,
            exclude=exclude,
        )

    def _text(self, item_id: str) -> str:
        try:
            return self.library.item(item_id).text
        except PolylensError:
            return ""

    # -- the whole answer ------------------------------------------------------------
    def stream(self, question: str, *, stream: bool = True) -> Iterator[AskEvent]:
        question = check_question(question)
        self.settings.require_endpoint()
        results, chosen = self.gather(question)
        state = _State(question)
        if not chosen:
            yield from self._abstain(state, results)
            return
        client = self._client_factory(self.settings)
        try:
            self._add(state, chosen, round_=1)
            yield AskEvent("evidence", {"references": [r.to_dict() for r in self._refs(state)]})
            text = ""
            for round_ in range(1, self.settings.rounds + 1):
                may_search = round_ < self.settings.rounds
                text, query = yield from self._reply(client, state, may_search, stream)
                if query is None:
                    break
                added = self._search_again(state, query, round_ + 1)
                yield AskEvent("round", state.rounds[-1].to_dict())
                if added:
                    refs = self._refs(state)[-added:]
                    yield AskEvent("evidence", {"references": [r.to_dict() for r in refs]})
            yield from self._finish(state, text)
        finally:
            client.close()

    def _reply(
        self, client: ChatClient, state: _State, may_search: bool, stream: bool
    ) -> Iterator[AskEvent]:
        """Stream one model reply; returns (text, search query or None)."""
        while True:
            images = self.settings.vision and "text-only" not in state.fallbacks
            tools = [SEARCH_TOOL] if may_search and "no-tools" not in state.fallbacks else None
            messages = build_messages(
                state.question,
                [e.block for e in state.evidence],
                searches=state.searches,
                may_search=may_search,
                final_round=not may_search,
                images=images,
                data_url=data_url,
            )
            has_pictures = images and any(e.block.jpeg for e in state.evidence)
            text, held, emitted = "", "", 0
            call: ToolCall | None = None
            try:
                for piece in client.chat(messages, tools=tools, stream=stream):
                    if isinstance(piece, Usage):
                        for key, value in piece.tokens.items():
                            state.usage[key] = state.usage.get(key, 0) + value
                    elif isinstance(piece, ToolCall):
                        call = call or piece
                    elif isinstance(piece, TextPiece):
                        text += piece.text
                        if may_search and could_be_search(text):
                            held = text
                            continue
                        held = ""
                        yield AskEvent("delta", {"text": text[emitted:]})
                        emitted = len(text)
                        yield from self._finished_sentences(state, text)
            except EndpointRejectedError as exc:
                if exc.status not in REFUSALS:
                    raise
                if has_pictures:
                    state.fallbacks.append("text-only")
                    log.warning("%s; retrying without pictures", exc)
                elif tools:
                    state.fallbacks.append("no-tools")
                    log.warning("%s; retrying without tools", exc)
                else:
                    raise
                continue
            query = None
            if may_search:
                if call is not None and call.name == "search":
                    query = str(call.arguments.get("query") or "").strip() or None
                if query is None:
                    query = search_request(text)
            if query is None and held:
                yield AskEvent("delta", {"text": text[emitted:]})
            return text, query

    def _finished_sentences(self, state: _State, text: str) -> Iterator[AskEvent]:
        pieces, _ = complete_prefix(text)
        for index in range(state.sentences_sent, len(pieces)):
            sentence, _ = parse_sentence(pieces[index], len(state.evidence))
            if sentence.text:
                yield AskEvent("citations", {"index": index, **sentence.to_dict()})
        state.sentences_sent = max(state.sentences_sent, len(pieces))

    def _search_again(self, state: _State, query: str, round_: int) -> int:
        query = query[:MAX_QUESTION_CHARS]
        state.searches.append(query)
        results = self.library.search(query, k=CANDIDATES)
        chosen = (
            []
            if results.no_good_match
            else self._choose(results, exclude=[e.hit for e in state.evidence])
        )
        before = len(state.evidence)
        self._add(state, chosen, round_=round_)
        added = tuple(range(before + 1, len(state.evidence) + 1))
        state.rounds.append(Round(query, added))
        return len(added)

    def _finish(self, state: _State, text: str) -> Iterator[AskEvent]:
        parsed = parse_answer(text, len(state.evidence))
        for index in range(state.sentences_sent, len(parsed.sentences)):
            yield AskEvent("citations", {"index": index, **parsed.sentences[index].to_dict()})
        answer = Answer(
            question=state.question,
            answer=text.strip(),
            sentences=parsed.sentences,
            references=self._refs(state),
            abstained=says_insufficient(text),
            abstain_reason="model" if says_insufficient(text) else None,
            dropped_citations=parsed.dropped,
            usage=state.usage,
            rounds=state.rounds,
            model=self.settings.model,
            fallbacks=state.fallbacks,
        )
        yield AskEvent("done", answer.to_dict(), answer)

    def _abstain(self, state: _State, results: SearchResults) -> Iterator[AskEvent]:
        closest = [
            _reference(i, hit, round_=1, sent_as="none")
            for i, hit in enumerate(results[:CLOSEST_SHOWN], start=1)
        ]
        yield AskEvent(
            "evidence", {"references": [r.to_dict() for r in closest], "no_good_match": True}
        )
        answer = Answer(
            question=state.question,
            answer="No good match: nothing in the index looks like it answers this, so no "
            "model was asked. The closest items are listed.",
            references=closest,
            abstained=True,
            abstain_reason="no_good_match",
            model=self.settings.model,
        )
        yield AskEvent("done", answer.to_dict(), answer)

    # -- evidence blocks -------------------------------------------------------------
    def _add(self, state: _State, hits: list[Hit], *, round_: int) -> None:
        budget = self.settings.image_bytes - sum(len(e.block.jpeg or b"") for e in state.evidence)
        for hit in hits:
            n = len(state.evidence) + 1
            jpeg = None
            if self.settings.vision and hit.kind in PICTURE_KINDS and budget > 0:
                jpeg = self._picture(hit, budget)
                budget -= len(jpeg or b"")
            text = self._text(hit.id)[: self.settings.text_chars]
            span = (hit.start, hit.end or hit.start) if hit.start is not None else None
            block = EvidenceBlock(n, hit.path, hit.kind, hit.page, text, jpeg, span)
            state.evidence.append(_Evidence(hit, block, round_))

    def _picture(self, hit: Hit, budget: int) -> bytes | None:
        try:
            picture = self.library.item_image(hit.id)
        except PolylensError as exc:
            log.warning("%s: picture not sent (%s)", hit.path, exc)
            return None
        return fit_jpeg(picture, max_pixels=self.settings.image_pixels, max_bytes=budget)

    def _refs(self, state: _State) -> list[Reference]:
        images = self.settings.vision and "text-only" not in state.fallbacks
        return [
            _reference(
                e.block.n,
                e.hit,
                round_=e.round,
                sent_as="image+text" if images and e.block.jpeg else "text",
            )
            for e in state.evidence
        ]


def _reference(n: int, hit: Hit, *, round_: int, sent_as: str) -> Reference:
    return Reference(
        n=n,
        id=hit.id,
        path=hit.path,
        kind=hit.kind,
        page=hit.page,
        chunk=hit.chunk,
        confidence=hit.confidence,
        snippet=hit.snippet,
        sent_as=sent_as,
        round=round_,
        start=hit.start,
        end=hit.end,
    )


def check_question(question: str) -> str:
    question = " ".join((question or "").split())
    if not question:
        raise InputError("give a question to ask")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return question


def collect(events: Iterator[AskEvent]) -> Answer:
    """Run a streamed answer to the end."""
    for event in events:
        if event.type == "done" and event.answer is not None:
            return event.answer
    raise RuntimeError("the answer stream ended without a result")  # a bug, not input


__all__ = ["Asker", "Library", "check_question", "collect"]
