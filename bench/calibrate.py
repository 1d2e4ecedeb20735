"""Fit the confidence curves (src/polylens/search/calibration.json) on judged data.

Rows: the top 10 hits of every Cranfield development query (relevant: judged in its
qrels), and of the hand-written unanswerable queries over Cranfield (none relevant),
bench/data/no_match/cranfield_{near,offtopic}.jsonl. Each curve is a logistic regression
of relevance on one kind of evidence; the combination of two lists' log-odds is a
second logistic regression. Queries are split in halves (even / odd positions): the
curves are fitted on one half and log-loss and calibration error are reported on both.

    python bench/calibrate.py                 # fit and report
    python bench/calibrate.py --write         # also write src/polylens/search/calibration.json

Image curves (``image-text``, ``image``) cannot be fitted here: no real image-text model
is reachable offline. They keep their priors (marked so in the JSON).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _confidence import (  # noqa: E402
    CRANFIELD,
    NO_MATCH,
    REPO,
    Scored,
    cranfield_index,
    expected_calibration_error,
    fit_logistic,
    read_jsonl,
    scored_hits,
    split_half,
)

CALIBRATION = REPO / "src" / "polylens" / "search" / "calibration.json"
FITTED = ("text", "bm25")


def collect(work: Path, data: Path, part: str) -> list[Scored]:
    index, dataset, mapping = cranfield_index(work, data)
    rows: list[Scored] = []
    qids = split_half([{"id": q} for q in sorted(dataset.queries, key=int)], part)
    for entry in qids:
        qid = entry["id"]
        judged = {d for d, grade in dataset.qrels.get(qid, {}).items() if grade > 0}
        rows += scored_hits(
            index,
            dataset.queries[qid].text,
            lambda hit, judged=judged: mapping.get(hit.path) in judged,
            query_id=f"cranfield:{qid}",
        )
    for name in ("cranfield_near", "cranfield_offtopic"):
        for entry in split_half(read_jsonl(NO_MATCH / f"{name}.jsonl"), part):
            rows += scored_hits(index, entry["text"], lambda hit: False, query_id=entry["id"])
    index.close()
    return rows


def fit(rows: list[Scored], priors: dict) -> dict:
    curves = dict(priors["curves"])
    for name in FITTED:
        mine = [r for r in rows if name in r.evidence]
        x = np.array([[r.evidence[name]] for r in mine])
        y = np.array([float(r.relevant) for r in mine])
        slope, intercept = fit_logistic(x, y)
        curves[name] = {"slope": round(float(slope), 4), "intercept": round(float(intercept), 4)}
    both = [r for r in rows if all(n in r.evidence for n in FITTED)]
    x = np.array(
        [
            [curves[n]["slope"] * r.evidence[n] + curves[n]["intercept"] for n in FITTED]
            for r in both
        ]
    )
    y = np.array([float(r.relevant) for r in both])
    *coef, bias = fit_logistic(x, y)
    scale = float(sum(coef))
    weights = dict(priors.get("weights", {}))
    for name, c in zip(FITTED, coef, strict=True):
        weights[name] = round(float(c) / scale, 4) if scale > 0 else 1.0
    return {
        "curves": curves,
        "weights": weights,
        "combined": {"scale": round(scale, 4), "bias": round(float(bias), 4)},
    }


def report(rows: list[Scored], params: dict) -> dict:
    from polylens.search.calibration import Calibration

    calibration = Calibration.from_dict(params)
    p = np.array([calibration.combine(r.evidence) or 0.0 for r in rows])
    y = np.array([float(r.relevant) for r in rows])
    eps = 1e-6
    logloss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    return {
        "rows": len(rows),
        "relevant_share": round(float(y.mean()), 4),
        "log_loss": round(logloss, 4),
        "ece": round(expected_calibration_error(p, y), 4),
        "mean_confidence": round(float(p.mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=CRANFIELD)
    parser.add_argument("--work", type=Path, default=REPO / ".bench-work" / "calibrate")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "calibrate.json")
    args = parser.parse_args()

    started = time.perf_counter()
    priors = json.loads(CALIBRATION.read_text("utf-8"))
    fit_rows = collect(args.work, args.data, "fit")
    check_rows = collect(args.work, args.data, "check")
    params = fit(fit_rows, priors)
    quality = {"fit": report(fit_rows, params), "check": report(check_rows, params)}

    print(f"{'half':6} {'rows':>6} {'relevant':>9} {'log-loss':>9} {'ECE':>7} {'mean p':>7}")
    for half, q in quality.items():
        print(
            f"{half:6} {q['rows']:6d} {q['relevant_share']:9.3f} {q['log_loss']:9.4f} "
            f"{q['ece']:7.4f} {q['mean_confidence']:7.3f}"
        )
    print(json.dumps(params, indent=1))
    document = {
        "about": (
            "Confidence curves: log-odds of relevance = slope * evidence + intercept. "
            "text and bm25 fitted by bench/calibrate.py on the top 10 hits of half the "
            "Cranfield development queries and half of bench/data/no_match/cranfield_*.jsonl; "
            "image-text and image are priors (no real image-text model offline)."
        ),
        "command": "python bench/calibrate.py --write",
        "fitted": list(FITTED),
        "priors": [c for c in params["curves"] if c not in FITTED],
        **params,
        "quality": quality,
    }
    if args.write:
        CALIBRATION.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION.relative_to(REPO)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                **document,
                "date": dt.date.today().isoformat(),
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
