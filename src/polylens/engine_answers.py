"""What an index answers beyond search: questions (``ask``, through a model endpoint),
the listwise reranker built on the same endpoint, and heat maps of late-interaction
matches. Kept apart from :mod:`polylens.engine` so the facade stays readable; ``Index``
inherits these methods, and they use only its public reading methods and lineup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from polylens.errors import InputError, ItemNotFoundError


class IndexAnswers:
    """Mixed into :class:`polylens.engine.Index`."""

    # provided by Index: config, _lineup, _meta, _store, item(), _reload_meta()
    config: Any
    _lineup: Any
    _meta: Any
    _store: Any

    def ask(self, question: str, **options: Any) -> Any:
        """Answer ``question`` from the index's evidence through the configured model
        endpoint (see :meth:`ask_stream` for the options); an :class:`~polylens.ask.Answer`
        whose sentences cite numbered references."""
        from polylens.ask.asker import collect

        return collect(self.ask_stream(question, stream=False, **options))

    def ask_stream(
        self,
        question: str,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        max_evidence: int | None = None,
        rounds: int | None = None,
        vision: bool | None = None,
        stream: bool = True,
    ) -> Iterator[Any]:
        """The answer as :class:`~polylens.ask.AskEvent` steps: the evidence chosen, text
        as the model writes it, each sentence's citations once final, then the answer.
        Unset options come from the environment, then ``polylens.toml``."""
        from polylens.ask.asker import Asker
        from polylens.ask.settings import resolve_settings

        settings = resolve_settings(
            self.config,
            endpoint=endpoint,
            model=model,
            max_evidence=max_evidence,
            rounds=rounds,
            vision=vision,
        )
        return Asker(self, settings).stream(question, stream=stream)

    def heatmap(self, item_id: str, query: str) -> dict[str, Any]:
        """Which patches of a page matched ``query`` in the late-interaction
        representation: ``{"rows", "cols", "values" (row-major, 0..1), "score", ...}``."""
        self.item(item_id)
        self._reload_meta()
        if not query.strip():
            raise InputError("a heat map needs the query text")
        for bound in self._lineup.bound(self._meta, self.config, for_search=True):
            heatmap = getattr(bound.rep, "heatmap", None)
            if heatmap is not None and bound.model is not None:
                found = heatmap(self._store, bound.model, item_id, query)
                if found is None:
                    raise ItemNotFoundError(f"item {item_id} has no page vectors to map")
                return found
        # no such resource (a 404), not a bad request: the item is fine, the index has none
        raise ItemNotFoundError("this index keeps no page vectors: index it with --page-model NAME")

    def _listwise_reranker(self) -> Any:
        from polylens.ask.listwise import ListwiseReranker
        from polylens.ask.settings import resolve_settings

        return ListwiseReranker(resolve_settings(self.config))
