"""What a lower precision changes in a user's own rankings (``polylens eval --precision``).

int8 image embeddings are faster to make on a CPU but not the same function as fp32's, and
no benchmark of someone else's photos says what that does to yours. So the evaluation
builds a second index of the same documents with the int8 encoder and puts, beside each
configuration's metrics, how far its rankings moved: the share of each query's first ten
results both keep, how often the first result is the same, and each metric's change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polylens.eval.runner import EvalReport

Run = dict[str, dict[str, float]]


@dataclass
class PrecisionRow:
    configuration: str
    overlap_at_10: float
    """Mean over queries of |top-10 here ∩ top-10 at fp32| / 10."""
    same_first: float
    """Share of queries whose first result is the same document."""
    metric_change: dict[str, float] = field(default_factory=dict)
    """Each metric at this precision minus at fp32."""


@dataclass
class PrecisionReport:
    precision: str
    rows: list[PrecisionRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "rows": [row.__dict__ for row in self.rows],
        }


def _top(run: dict[str, float], k: int) -> list[str]:
    return [doc for doc, _ in sorted(run.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def agreement(reference: Run, other: Run, k: int = 10) -> tuple[float, float]:
    """(mean top-k overlap, share with the same first result) over the reference's queries;
    a query the other run did not answer counts as no agreement."""
    if not reference:
        return 1.0, 1.0
    overlap = same = 0.0
    for qid, ranked in reference.items():
        mine, theirs = _top(ranked, k), _top(other.get(qid, {}), k)
        if mine:
            overlap += len(set(mine) & set(theirs)) / min(k, len(mine))
            same += bool(theirs) and mine[0] == theirs[0]
        else:
            overlap += 1.0 if not theirs else 0.0
            same += not theirs
    return overlap / len(reference), same / len(reference)


def compare(reference: EvalReport, other: EvalReport, precision: str) -> PrecisionReport:
    """Row by configuration both reports have (by name)."""
    theirs = {result.name: result for result in other.results}
    rows = []
    for result in reference.results:
        match = theirs.get(result.name)
        if match is None:
            continue
        overlap, same = agreement(reference.runs[result.name], other.runs[result.name])
        change = {m: match.metrics[m] - v for m, v in result.metrics.items() if m in match.metrics}
        rows.append(PrecisionRow(result.name, overlap, same, change))
    return PrecisionReport(precision, rows)
