"""Query latency, throughput and recall: polylens vs numpy exact, FAISS HNSW, raw LanceDB.

One synthetic corpus (clustered 512-d vectors, Zipf texts, 80 % image / 20 % page), one
query set, every system in the same run; plus the cost of encoding a text query.

    python bench/query.py --sizes 100000 1000000 --queries 1000          # everything
    python bench/query.py --sizes 1000000 --step faiss-build             # one resumable step
    python bench/query.py --report                                       # table from JSON

Steps (``--step``, repeatable; default: all, in this order): data, faiss-build,
lance-build, polylens-build, numpy, faiss, lance, polylens, encoders. Build steps are
resumable and stop after ``--budget`` seconds ("rerun to resume"), so each invocation can
be run under ``flock /tmp/polylens-cpu.lock`` without holding it for long. Work files go
to ``.bench-work/query/``; results are merged into ``bench/results/query.json``.

Targets (printed as a check): polylens p50 <= 5 ms and p99 <= 20 ms at 1M items with
recall@10 >= 0.95, fusing BM25 + dense and applying a kind filter, on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("LANCE_LOG", "error")  # silence per-query deprecation warnings

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REPO = HERE.parent
WORK = REPO / ".bench-work" / "query"
RESULTS = HERE / "results" / "query.json"

STEPS = (
    "data",
    "faiss-build",
    "lance-build",
    "polylens-build",
    "numpy",
    "faiss",
    "lance",
    "polylens",
    "encoders",
    "e2e",
)

TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0
TARGET_RECALL = 0.95
TARGET_E2E_P50_MS = 15.0


def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"sizes": {}}


def save_results(results: dict) -> None:
    import lancedb
    import numpy

    try:
        import faiss

        faiss_version = faiss.__version__
    except ImportError:  # pragma: no cover
        faiss_version = None
    results["env"] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "lancedb": lancedb.__version__,
        "faiss": faiss_version,
        "numpy": numpy.__version__,
        "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(RESULTS)


def run_steps(args: argparse.Namespace) -> int:
    from _query_data import Corpus
    from _query_systems import (
        BudgetExceeded,
        build_faiss,
        build_lance,
        build_polylens,
        measure_encoders,
        measure_faiss,
        measure_lance,
        measure_numpy,
        measure_polylens,
    )

    WORK.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(WORK / "data")
    steps = args.step or list(STEPS)
    tables = tuple(args.lance_tables)
    incomplete = False
    for step in steps:
        if step == "encoders":
            print("== encoders", flush=True)
            res = measure_encoders(args.encoder_calls)
            results = load_results()
            results["encoders"] = res
            save_results(results)
            continue
        for n in args.sizes:
            key = str(n)
            print(f"== {step} n={n}", flush=True)
            t0 = time.perf_counter()
            try:
                if step == "data":
                    corpus.ensure(n)
                    corpus.queries(n, args.queries)
                    corpus.ground_truth(n, args.queries)
                    corpus.item_ids(n)
                    continue
                if step == "faiss-build":
                    build_faiss(corpus, WORK, n, args.budget)
                    continue
                if step == "lance-build":
                    deadline = time.perf_counter() + args.budget
                    while time.perf_counter() < deadline:
                        state = build_lance(corpus, WORK, n, tables)
                        print(f"  lance {n}: {state}", flush=True)
                        if state.get("done"):
                            break
                    else:
                        raise BudgetExceeded(f"lance {n}: budget used; rerun to resume")
                    continue
                if step == "polylens-build":
                    state = build_polylens(corpus, WORK, n, args.budget, args.upsert_batch)
                    if not state.get("done"):
                        state = build_polylens(corpus, WORK, n, args.budget, args.upsert_batch)
                    print(f"  polylens {n}: {state}", flush=True)
                    continue
                q = corpus.queries(n, args.queries)
                gt = corpus.ground_truth(n, args.queries)
                n_single = min(args.queries, args.single)
                if step == "numpy":
                    res = measure_numpy(corpus, n, q, gt, min(n_single, args.exact_single))
                elif step == "faiss":
                    res = measure_faiss(WORK, n, q, gt, n_single)
                elif step == "lance":
                    res = measure_lance(WORK, n, q, gt, n_single, args.sweep_queries, tables)
                elif step == "e2e":
                    from _query_e2e import measure_e2e

                    res = measure_e2e(
                        WORK, n, list(q["texts"]), min(n_single, args.polylens_single)
                    )
                elif step == "polylens":
                    res = measure_polylens(
                        WORK,
                        corpus,
                        n,
                        q,
                        gt,
                        min(n_single, args.polylens_single),
                        WORK / f"profile_polylens_{n}.txt",
                    )
                else:
                    raise SystemExit(f"unknown step {step}")
                res["measured_s"] = round(time.perf_counter() - t0, 1)
                results = load_results()
                results["sizes"].setdefault(key, {})[step] = res
                results["queries"] = args.queries
                save_results(results)
            except BudgetExceeded as exc:
                print(f"  stopped: {exc}", flush=True)
                incomplete = True
    print_report(load_results())
    return 3 if incomplete else 0


# -- report --------------------------------------------------------------------------
def _fmt(x: object, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def rows_for_size(entry: dict) -> list[list[str]]:
    rows = []

    def add(
        name: str,
        single: dict | None,
        qps: object,
        recall: object,
        build: object,
        size: object,
        note: str = "",
    ) -> None:
        single = single or {}
        rows.append(
            [
                name,
                _fmt(single.get("p50_ms")),
                _fmt(single.get("p99_ms")),
                _fmt(single.get("qps_sequential"), 0),
                _fmt(qps if not isinstance(qps, str) else "n/a", 0),
                _fmt(recall, 3),
                _fmt(build, 1),
                _fmt(size, 0),
                note,
            ]
        )

    if "numpy" in entry:
        e = entry["numpy"]
        add(
            "numpy exact",
            e["single"],
            e["batch32_qps"],
            e["recall@10"],
            e["build_s"],
            e["memory_mb"],
            "RAM MB",
        )
    if "faiss" in entry:
        e = entry["faiss"]
        for p in e["points"]:
            mark = " *" if f"efSearch={p['efSearch']}" == e["config"] else ""
            add(
                f"FAISS HNSW32 ef={p['efSearch']}{mark}",
                p["single"],
                p["batch32_qps"],
                p["recall@10"],
                e["build_s"],
                e["disk_mb"],
                "",
            )
    if "lance" in entry:
        e = entry["lance"]
        for name, ix in e.get("indexes", {}).items():
            cfg = ",".join(f"{k}={v}" for k, v in ix["config"].items() if v) or "defaults"
            add(
                f"Lance {name} [{cfg}]",
                ix["single"],
                ix["batch32_qps"],
                ix["recall@10"],
                ix["build_s"],
                e["disk_mb"],
                "",
            )
            d = ix["default_params"]
            rows.append(
                [
                    f"  (Lance {name} defaults)",
                    _fmt(d["p50_ms"]),
                    "",
                    "",
                    "",
                    _fmt(d["recall@10"], 3),
                    "",
                    "",
                    "sweep subset",
                ]
            )
            f = ix["filtered_image"]
            add(
                "  + where kind='image'",
                f["single"],
                None,
                f["recall@10"],
                None,
                None,
                "vs image-only truth",
            )
        if "fts" in e:
            add("Lance FTS", e["fts"]["single"], None, None, e["fts"]["build_s"], None, "")
            add("  + where kind='image'", e["fts"]["filtered_image"], None, None, None, None, "")
        if "hybrid" in e and "single" in e["hybrid"]:
            add("Lance hybrid (vec+FTS, RRF)", e["hybrid"]["single"], None, None, None, None, "")
            add("  + where kind='image'", e["hybrid"]["filtered_image"], None, None, None, None, "")
    if "polylens" in entry:
        e = entry["polylens"]
        first = True
        for mode, m in e["modes"].items():
            rec = m.get("recall@10", m.get("overlap_with_dense_truth@10"))
            note = "" if "recall@10" in m else "overlap w/ dense truth"
            add(
                f"polylens {mode}",
                m["single"],
                None,
                rec,
                e["build_s"] if first else None,
                e["disk_mb"] if first else None,
                note,
            )
            first = False
    return rows


def print_report(results: dict) -> None:
    header = ["system", "p50 ms", "p99 ms", "qps 1x1", "qps b32", "rec@10", "build s", "MB", "note"]
    for key, entry in sorted(results.get("sizes", {}).items(), key=lambda kv: int(kv[0])):
        rows = rows_for_size(entry)
        if not rows:
            continue
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        print(f"\n### {int(key):,} items, {results.get('queries')} queries, k=10")
        for r in [header, ["-" * w for w in widths], *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        _print_checks(int(key), entry)
        _print_e2e(entry.get("e2e"))
    if "encoders" in results:
        print("\n### text-query encoding (single query, CPU)")
        enc = results["encoders"]
        for threads in ("threads=1", "threads=2", "onnxruntime (its default: 2 threads)"):
            for name, lat in enc.get(threads, {}).items():
                print(
                    f"  {threads}  {name:55s} p50 {lat['p50_ms']:7.2f} ms  p99 {lat['p99_ms']:7.2f} ms"
                )


def _print_e2e(e2e: dict | None) -> None:
    """Goal 3 of issue 18: a text query end to end (encode + search + fuse), warm."""
    if not e2e:
        return
    print("  end to end (query encoded by ONNX Runtime, then searched and fused):")
    for mode, lat in e2e["modes"].items():
        print(f"    {mode:18s} p50 {lat['p50_ms']:7.2f} ms  p99 {lat['p99_ms']:7.2f} ms")
    for name in ("clip_encode_only", "minilm_encode_only"):
        lat = e2e[name]
        print(f"    {name:18s} p50 {lat['p50_ms']:7.2f} ms  p99 {lat['p99_ms']:7.2f} ms")
    fused = e2e["modes"]["fused"]["p50_ms"]
    print(
        f"  check (e2e): fused p50 {fused:.2f} ms (<= {TARGET_E2E_P50_MS}): "
        f"{'met' if fused <= TARGET_E2E_P50_MS else 'MISSED'}; with MiniLM's encode added "
        f"(a sum of parts) {e2e['with_minilm_p50_ms_sum']:.2f} ms"
    )


def _print_checks(n: int, entry: dict) -> None:
    pl = entry.get("polylens")
    if not pl:
        return
    modes = pl["modes"]
    fused_f = modes.get("fused+kind=image", {}).get("single", {})
    dense = modes.get("dense", {})
    rec = dense.get("recall@10")
    p50, p99 = fused_f.get("p50_ms"), fused_f.get("p99_ms")
    ok = (
        p50 is not None
        and p99 is not None
        and rec is not None
        and p50 <= TARGET_P50_MS
        and p99 <= TARGET_P99_MS
        and rec >= TARGET_RECALL
    )
    scope = "target applies at 1M" if n < 1_000_000 else "TARGET"
    print(
        f"  check ({scope}): polylens fused+filter p50 {p50} ms (<= {TARGET_P50_MS}), "
        f"p99 {p99} ms (<= {TARGET_P99_MS}), dense recall@10 {rec} (>= {TARGET_RECALL}) -> "
        f"{'PASS' if ok else 'FAIL'}"
    )
    ratios = []
    if "faiss" in entry and p50:
        ratios.append(f"x{p50 / entry['faiss']['single']['p50_ms']:.1f} FAISS HNSW p50")
    lance = entry.get("lance", {})
    best = lance.get("indexes", {}).get("hnsw_sq")
    if best and p50:
        ratios.append(f"x{p50 / best['single']['p50_ms']:.1f} Lance IVF_HNSW_SQ p50")
    hyb = lance.get("hybrid", {}).get("filtered_image")
    if hyb and p50:
        ratios.append(f"x{p50 / hyb['p50_ms']:.1f} Lance hybrid+filter p50")
    if "numpy" in entry and p50:
        ratios.append(f"x{p50 / entry['numpy']['single']['p50_ms']:.2f} numpy exact p50")
    if ratios:
        print("  polylens fused+filter p50 vs: " + ", ".join(ratios))
    cold = pl.get("cold")
    if cold:
        print(
            f"  polylens cold start: open {cold['open_ms']} ms, first query {cold['first_query_ms']} ms, "
            f"steady after {cold['queries_until_steady']} queries / {cold['seconds_until_steady']} s; "
            f"RSS +{pl.get('rss_delta_mb')} MB"
        )
    st = pl.get("stages_fused+kind=image")
    if st:
        print(
            "  polylens stages (fused+kind=image, ms/query): "
            + ", ".join(
                f"{k} {v['ms_per_query']}"
                + (f" ({v['calls_per_query']} calls)" if "calls_per_query" in v else "")
                for k, v in st.items()
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000, help="query set size (recall sweeps)")
    parser.add_argument("--single", type=int, default=1000, help="queries timed one at a time")
    parser.add_argument(
        "--exact-single", type=int, default=200, help="cap for numpy single queries"
    )
    parser.add_argument("--polylens-single", type=int, default=300, help="cap per polylens mode")
    parser.add_argument(
        "--sweep-queries", type=int, default=200, help="queries per Lance sweep point"
    )
    parser.add_argument("--encoder-calls", type=int, default=200)
    parser.add_argument("--lance-tables", nargs="+", default=["hnsw_sq", "ivf_pq"])
    parser.add_argument("--upsert-batch", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=480.0, help="seconds per build invocation")
    parser.add_argument("--step", action="append", choices=STEPS)
    parser.add_argument("--report", action="store_true", help="print the table from the JSON")
    args = parser.parse_args(argv)
    if args.report:
        print_report(load_results())
        return 0
    return run_steps(args)


if __name__ == "__main__":
    raise SystemExit(main())
