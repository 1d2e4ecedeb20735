"""The unit every way of representing an item implements: one module each, one registration.

A representation says which item kinds it covers, what it needs from decoding, how it
encodes a batch (with a model loaded lazily through the model registry, or none), what it
stores, which queries reach it, how it ranks, and what it records and shows. Ingest,
back-fill, search, the read model, status and evaluation iterate over an index's
representations and name none of them (sentence-transformers' module list and txtai's
pipelines are the model: a capability is a unit you register, not branches you thread).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from polylens.store.base import Filter, Store

if TYPE_CHECKING:
    from polylens.config import IndexConfig
    from polylens.encoders.registry import ModelRegistry
    from polylens.meta import ModelRecord
    from polylens.representations.ann import AnnSettings
    from polylens.representations.masks import FilterMasks
    from polylens.types import StageClock, Unit

PICTURE_KINDS = ("image", "page", "video")
"""Kinds with a picture (a video segment's: its keyframes)."""


@dataclass(frozen=True)
class Needs:
    """What decoding must supply. ``pixels``: the picture of images and pages (each
    representation turns it into its own input on the decode threads); ``text``: the
    item's text (text layer, OCR, passages), which the store keeps, so a back-fill of a
    text-only representation decodes nothing."""

    pixels: bool = False
    text: bool = False


@dataclass(frozen=True)
class Query:
    text: str = ""
    image: Any = None
    """A PIL image."""
    item_id: str | None = None
    """More like this: a stored item, reached through what each representation stored for it."""
    text_share: float = 1.0
    """The weight share of the text part when an image is in the query too."""
    image_digest: str | None = None
    """The content hash of the query image's file, when it came as a file or bytes: an
    indexed exact copy of it is recognised without looking at pixels."""
    exact: bool = False
    """Score exhaustively where a representation has an approximate first stage (checks)."""


@dataclass
class Ranked:
    """One representation's answer: item ids best first, with their scores on its own
    scale (higher is better: cosine, BM25, minus Hamming distance). ``pinned`` lists go
    ahead of the fused list, best score first (exact and near copies of a query image)."""

    ids: list[str]
    scores: list[float]
    weight: float = 1.0
    pinned: bool = False
    evidence: list[float] | None = None
    """Per item, its score normalised against this index's background for the query
    (standard deviations above the query's mean over a sample of the index, or the share
    of the query BM25 matched): what confidence is calibrated from. None: no evidence."""
    curve: str | None = None
    """The calibration curve ``evidence`` follows (``text``, ``image-text``, ``image``,
    ``bm25``: see :mod:`polylens.search.calibration`)."""
    kinds: tuple[str, ...] | None = None
    """The item kinds this list ranked (None: all its representation covers). An item of
    another kind is not judged by the list's absence of it."""


@dataclass
class SearchContext:
    """What a representation reads while answering one query."""

    store: Store
    config: IndexConfig
    model: Any
    part: Any
    """The representation's in-memory read-model part, or None: answer from the store."""
    depth: int
    where: Filter | None
    index_dir: Path | None = None
    """Where files derived from the store lie (None: a store without an index directory)."""


@dataclass
class BuildContext:
    """What a representation gets when the read model is built or derived files refreshed."""

    store: Store
    index_dir: Path
    ann: AnnSettings
    item_ids: pa.Array
    """Item ids in read-model row order (``ids``: the same as a list)."""
    ids: list[str] = field(default_factory=list)
    item_masks: FilterMasks | None = None
    item_texts: list[str] | None = None


class Representation(ABC):
    """One way of representing items. Subclasses set the class attributes and implement
    the methods their capabilities need; defaults mean "not applicable"."""

    name: ClassVar[str]
    """What users type (``--with NAME``) and what a hit's ``sources`` names."""
    title: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    """Item kinds it holds data for."""
    needs: ClassVar[Needs] = Needs()
    accepts: ClassVar[frozenset[str]] = frozenset()
    """Query parts that reach it: ``text``, ``image``, ``item`` (a stored item)."""
    modality: ClassVar[str] = "text"
    """``text`` or ``image``: which part of a query it answers (weights of combined
    queries; evaluation's text-only hybrid)."""
    supplementary: ClassVar[bool] = False
    """Answers only beside another representation (never a query on its own)."""
    default: ClassVar[bool] = True
    """Part of a new index unless ``--without NAME``."""
    collection: ClassVar[str | None] = None
    """The store collection it owns (None: it reads the items' own columns)."""
    version: ClassVar[int] = 1
    """Bumped when what it stores changes meaning."""
    stored_as: ClassVar[str] = ""
    """What its rows are, in progress lines ("image vectors"); empty: its name's data."""
    eval_name: ClassVar[str]
    """Its configuration name in ``polylens eval``."""
    model_key: ClassVar[str | None] = None
    """The setting naming its model (``image_model``), or None when it has none."""
    weight_key: ClassVar[str | None] = None
    """The setting holding its weight in fusion (``weight_text``; what ``eval --tune``
    sets), or None: weight 1."""
    model_role: ClassVar[str] = ""
    """Its model's role in the model registry's aliases and in messages (``image``)."""
    _from_store: tuple[Any, Any] | None = None

    # -- models ----------------------------------------------------------------------
    @property
    def model_role_label(self) -> str:
        """How messages name its model's role (``image`` in ``--image-model``)."""
        return self.model_role or self.name

    def model_name(self, config: IndexConfig) -> str | None:
        return getattr(config, self.model_key) if self.model_key else None

    def canonical(self, registry: ModelRegistry, name: str) -> str:
        """What the index records and compares for a model name (``none``: disabled)."""
        return self.algorithm

    @property
    def algorithm(self) -> str:
        """For representations without a model: what they compute, with its version."""
        return f"{self.name}-v{self.version}"

    def load_model(self, registry: ModelRegistry, config: IndexConfig) -> Any:
        """The encoder (raises ModelNotAvailableError), or None when disabled. Only
        called when ``model_key`` is set."""
        return None

    def holds_data(self, record: ModelRecord) -> bool:
        """Whether the index holds this representation's data (per its record)."""
        return record.resolved != "none" and record.error is None

    def weight(self, config: IndexConfig) -> float:
        """Its lists' weight in fusion: the setting ``weight_key`` names, else 1."""
        return float(getattr(config, self.weight_key)) if self.weight_key else 1.0

    def answers(self, part: str) -> bool:
        """Whether a query made only of ``part`` (text, image, item) can be answered by it."""
        return part in self.accepts and not self.supplementary

    # -- decode and encode -----------------------------------------------------------
    def prepare(self, model: Any, picture: Any) -> Any:
        """This representation's input from a decoded picture (runs on decode threads)."""
        return picture

    def picture_side(self, model: Any) -> int | None:
        """The short side, in pixels, a picture needs for :meth:`prepare` to see all it
        uses; None: not known (the picture is decoded at a generous default)."""
        return None

    def wants(self, item: dict[str, Any], config: IndexConfig) -> bool:
        """Whether an item (a stored row: kind, text) should have data of this one."""
        if item["kind"] not in self.kinds:
            return False
        pixels = self.needs.pixels and item["kind"] in PICTURE_KINDS
        return pixels or (self.needs.text and bool(item["text"].strip()))

    def caveats(self, config: IndexConfig) -> list[str]:
        """What a user should know before this run under ``config``: settings that leave
        this representation with less input than they may expect (shown as warnings)."""
        return []

    def ensure_storage(self, store: Store, model: Any) -> None:
        """Create its collection (if it has one)."""
        return None

    def encode(
        self, model: Any, units: Sequence[Unit], config: IndexConfig, clock: StageClock
    ) -> list[dict[str, Any]]:
        """Rows for its collection from a batch of decoded units."""
        return []

    # -- read side -------------------------------------------------------------------
    def build_part(self, ctx: BuildContext) -> Any:
        """Its part of the in-memory read model (None: it answers from the store)."""
        return None

    def after_write(self, ctx: BuildContext) -> None:
        """Bring files derived from its data (ANN indexes, postings) up to date."""
        return None

    def footprint(self, index_dir: Path) -> int | None:
        """Bytes of the files it derives in the index directory (``status``), or None."""
        return None

    def drop(self, store: Store, index_dir: Path) -> None:
        """Remove everything it stored (``--without NAME`` on an existing index)."""
        if self.collection is not None:
            store.drop_collection(self.collection)

    def part_from_store(self, ctx: SearchContext) -> Any:
        """Its read-model part built straight from the store, for searches the in-memory
        read model does not answer (a one-shot CLI search; a server while the read model
        catches up with a write). Kept while the store does not change, so a server
        between two commits builds it once, not per query."""
        token = ctx.store.change_token()
        cached = self._from_store
        if token is not None and cached is not None and cached[0] == token:
            return cached[1]
        part = self.load_store_part(ctx)
        self._from_store = None if token is None else (token, part)
        return part

    def forget_store_part(self) -> None:
        """The read model answers now: let the copy built from the store go."""
        self._from_store = None

    def load_store_part(self, ctx: SearchContext) -> Any:
        """Build what :meth:`part_from_store` keeps (representations that rank from
        an in-memory part implement it)."""
        raise NotImplementedError(f"{self.name} has no part to build from the store")

    @abstractmethod
    def retrieve(self, query: Query, ctx: SearchContext) -> Ranked | None:
        """Rank items for the query parts it accepts; None when it has nothing to say."""


@dataclass(frozen=True)
class Bound:
    """A representation with its loaded model (``True`` for those without one)."""

    rep: Representation
    model: Any

    @property
    def name(self) -> str:
        return self.rep.name


def picture_side(bound: Sequence[Bound]) -> int | None:
    """The short side a photo must be decoded at for every pixel-reading representation;
    None when one of them does not say (then the decoder's default applies)."""
    sides = [b.rep.picture_side(b.model) for b in bound if b.rep.needs.pixels]
    if not sides or None in sides:
        return None
    return max(sides)  # type: ignore[type-var] - no None left


def pixel_preparers(bound: Sequence[Bound]) -> dict[str, Any]:
    """What the decode stage runs on each picture: one input per pixel-reading representation."""
    return {
        b.name: (lambda picture, b=b: b.rep.prepare(b.model, picture))
        for b in bound
        if b.rep.needs.pixels
    }
