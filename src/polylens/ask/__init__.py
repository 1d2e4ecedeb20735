"""Answers from an index's own pages, pictures and notes, every claim cited.

``polylens ask``, ``Index.ask`` and ``POST /api/ask`` share :class:`Asker`; the model is
any OpenAI-compatible endpoint the index's owner configures (:mod:`.settings`).
"""

from polylens.ask.types import Answer, AskEvent, Reference, Round, Sentence

__all__ = ["Answer", "AskEvent", "Reference", "Round", "Sentence"]
