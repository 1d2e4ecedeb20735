"""Late-interaction page retrieval (ColPali-style MaxSim): polylens's MultiVectorIndex against
exhaustive MaxSim (numpy, torch, polylens's own exact mode) and LanceDB's native multivector
index (IVF_PQ, with and without refine), on one synthetic corpus, in the same run.

    python bench/multivector.py --pages 20000                 # 20k pages x 64 patches x 128-d
    python bench/multivector.py --pages 100000
    python bench/multivector.py --pages 1000000 --gt-queries 100 --exhaustive-single 3
    python bench/multivector.py --pages 100000 --patches 700 --segments 26
    python bench/multivector.py --report                      # the tables from the JSON

Corpus (``_multivector_data.py``): clustered pages (topical regions + shared blank patches,
L2-normalised, fp16 on disk) and text queries written from a random page's concepts, so
there are right answers. Written once under ``.bench-work/multivector/`` and reused; the
first n pages of a bigger corpus are the n-page corpus.

Measured, per corpus size: build time and RAM of our index, single-query latency (p50/p99,
2 threads, one query at a time, warm page cache; plus a pass after evicting the patch file
from the page cache), agreement@10 with exhaustive MaxSim (|ours top 10 & exact top 10| / 10,
exact on ``--gt-queries`` queries, batched), the time to delete 1 % of the pages and the
agreement after it, a 10 % filter; the peers' latency and agreement on the same queries.
Exhaustive peers are timed on ``--exhaustive-single`` queries (seconds each at 1M).
LanceDB runs in a subprocess (its thread count is an environment variable) and is skipped
above ``--lance-max-pages`` (its build over all patch vectors grows with the corpus; the
100k build time is the basis for an estimate).

Every timed section holds the shared CPU lock (``--lock``); builds and the ground truth run
on one thread (a shared machine), queries on two (the target: p50 <= 50 ms, p99 <= 150 ms,
agreement >= 0.98, RAM <= 8 GB at 1M pages x 64 patches on 2 cores). Results are merged into
``bench/results/multivector.json`` under "pages x patches x dim".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("LANCE_LOG", "error")
# torch.from_numpy on the read-only memmap: the tensors are only read
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REPO = HERE.parent
WORK = REPO / ".bench-work" / "multivector"
RESULTS = HERE / "results" / "multivector.json"
K = 10
K_GT = 20  # exact top 20, so the top 10 after deleting 1 % is known too

TARGET_P50_MS = 50.0
TARGET_P99_MS = 150.0
TARGET_AGREEMENT = 0.98
TARGET_RAM_GB = 8.0


# -- helpers --------------------------------------------------------------------------
def rss() -> dict:
    import psutil

    mem = psutil.Process().memory_info()
    return {
        "rss_mb": round(mem.rss / 2**20, 1),
        "anon_mb": round((mem.rss - mem.shared) / 2**20, 1),
    }


def percentiles(ms: list[float]) -> dict:
    import numpy as np

    a = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(float(a.mean()), 2),
        "n": len(a),
    }


def agreement(found: list, truth) -> float:
    import numpy as np

    vals = [len(set(map(int, f[:K])) & set(map(int, t[:K]))) / K for f, t in zip(found, truth)]
    return round(float(np.mean(vals)), 4) if vals else None


def threads(n: int):
    """Thread count for BLAS (threadpoolctl), FAISS and torch."""
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return threadpool_limits(limits=n)


def evict(store) -> None:
    """Drop the patch file's pages from the page cache (only this file; nothing else). Pages
    mapped by a process stay, so the store's own memory map is released first."""
    import gc

    store.release()
    gc.collect()
    path = store.directory / store.VECTORS
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def key_of(args: argparse.Namespace) -> str:
    return f"{args.pages}x{args.patches}x{args.dim}"


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}


def save_results(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(RESULTS)


def machine() -> dict:
    import faiss
    import lancedb
    import numpy

    info = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "numpy": numpy.__version__,
        "faiss": faiss.__version__,
        "lancedb": lancedb.__version__,
        "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
    try:
        info["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


# -- ground truth (batched exhaustive MaxSim) ------------------------------------------
def ground_truth(store, queries: list, k: int, cache: Path) -> tuple:
    """Exact top ``k`` rows per query over the whole store: every stored vector against
    every query token at once (one pass over the file), float32 accumulate."""
    import numpy as np

    if cache.exists():
        data = np.load(cache)
        return data["rows"], data["scores"]
    import torch

    lengths = store.lengths()
    if not np.all(lengths == lengths[0]):
        raise SystemExit("ground_truth expects equal-length pages (the synthetic corpus)")
    plen = int(lengths[0])
    tokens = np.concatenate(queries).astype(np.float32)
    qstart = np.concatenate([[0], np.cumsum([len(q) for q in queries])[:-1]])
    qt = torch.from_numpy(tokens).T.contiguous()
    nq = len(queries)
    best_s = np.full((nq, k), -np.inf, np.float32)
    best_r = np.zeros((nq, k), np.int64)
    mm = store.vectors
    block = max(1, 8192 // plen)
    t0 = time.perf_counter()
    for a in range(0, len(store), block):
        b = min(len(store), a + block)
        v = torch.from_numpy(np.ascontiguousarray(mm[a * plen : b * plen])).float()
        per_page = (v @ qt).view(b - a, plen, -1).amax(dim=1).numpy()  # (pages, tokens)
        scores = np.add.reduceat(per_page, qstart, axis=1).T  # (nq, pages)
        cand_s = np.concatenate([best_s, scores], axis=1)
        cand_r = np.concatenate([best_r, np.broadcast_to(np.arange(a, b), (nq, b - a))], axis=1)
        part = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, part, 1)
        best_r = np.take_along_axis(cand_r, part, 1)
        if a // block % 500 == 0 and a:
            done = b / len(store)
            el = time.perf_counter() - t0
            print(
                f"  ground truth {done:.0%} ({el:.0f} s, ~{el / done - el:.0f} s left)", flush=True
            )
    order = np.argsort(-best_s, axis=1, kind="stable")
    best_s = np.take_along_axis(best_s, order, 1)
    best_r = np.take_along_axis(best_r, order, 1)
    np.savez(cache, rows=best_r, scores=best_s)
    return best_r, best_s


# -- exhaustive peers ------------------------------------------------------------------
def exhaustive_numpy(store, q, k: int, block: int = 16_384):
    """Exhaustive MaxSim in plain numpy: fp16 -> fp32 blocks, matmul, max, sum."""
    import numpy as np

    plen = int(store.lengths()[0])
    mm = store.vectors
    per = max(1, block // plen)
    scores = np.empty(len(store), np.float32)
    for a in range(0, len(store), per):
        b = min(len(store), a + per)
        v = mm[a * plen : b * plen].astype(np.float32)
        scores[a:b] = (v @ q.T).reshape(b - a, plen, -1).max(axis=1).sum(axis=1)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def exhaustive_torch(store, q, k: int, block: int = 16_384):
    """byaldi / colpali-engine's way on CPU: torch matmul over blocks of pages, amax, sum."""
    import numpy as np
    import torch

    plen = int(store.lengths()[0])
    mm = store.vectors
    per = max(1, block // plen)
    tq = torch.from_numpy(q).T.contiguous()
    scores = torch.empty(len(store))
    for a in range(0, len(store), per):
        b = min(len(store), a + per)
        v = torch.from_numpy(np.ascontiguousarray(mm[a * plen : b * plen])).float()
        scores[a:b] = (v @ tq).view(b - a, plen, -1).amax(dim=1).sum(dim=1)
    return torch.topk(scores, k).indices.numpy()


# -- our index -------------------------------------------------------------------------
def run_ours(args, store, queries, sources, gt_rows, lock) -> dict:
    import numpy as np
    from _cpu_lock import cpu_lock

    from polylens.search.multivector_index import MultiVectorIndex

    out: dict = {}
    r0 = rss()
    with cpu_lock(lock), threads(1):
        t0 = time.perf_counter()
        index = MultiVectorIndex.build(
            store,
            segments=args.segments,
            pooling=args.pooling,
            codec=args.codec,
            nprobe=args.nprobe,
            token_k=args.token_k,
            shortlist=args.shortlist,
        )
        out["build_s"] = round(time.perf_counter() - t0, 1)
    r1 = rss()
    out["build_threads"] = 1
    out["config"] = {
        "segments": index.segments,
        "pooling": index.pooling,
        "codec": args.codec,
        "nlist": int(index.first.nlist),
        "nprobe": index.nprobe,
        "token_k": index.token_k,
        "shortlist": index.shortlist,
        "candidates": args.candidates,
    }
    out["nbytes"] = index.nbytes
    out["ram_mb"] = {
        "index_parts": round(
            sum(v for kk, v in index.nbytes.items() if kk.endswith("_ram")) / 2**20, 1
        ),
        "rss_before_build": r0,
        "rss_after_build": r1,
    }
    print(f"  ours: built in {out['build_s']} s, {out['nbytes']}", flush=True)

    nq_gt = len(gt_rows)
    single = min(args.single, len(queries))

    def timed(fn, qs):
        times, found = [], []
        for q in qs:
            t = time.perf_counter()
            found.append(fn(q))
            times.append((time.perf_counter() - t) * 1000)
        return times, found

    default = dict(candidates=args.candidates)
    # one query at a time, at each thread count (FAISS + BLAS + torch); the rest at the first
    out["single_by_threads"] = {}
    # Two passes over the same queries: the first finds the page cache as it is (at 1M the
    # 16 GB patch file may not fit beside everything else), the second is the warm figure.
    # The cold figure (file evicted first) is measured further down.
    out["first_pass_by_threads"] = {}
    for nt in args.query_threads:
        with cpu_lock(lock), threads(nt):
            for q in queries[:5]:  # warm-up (FAISS threads, buffers)
                index.search(q, K, **default)
            first, _ = timed(lambda q: index.search(q, K, **default)[0], queries[:single])
            times, found = timed(lambda q: index.search(q, K, **default)[0], queries[:single])
        out["first_pass_by_threads"][str(nt)] = percentiles(first)
        out["single_by_threads"][str(nt)] = percentiles(times)
        print(
            f"  ours, {nt} thread(s): warm {out['single_by_threads'][str(nt)]}, "
            f"first pass {out['first_pass_by_threads'][str(nt)]}",
            flush=True,
        )
    best = min(out["single_by_threads"], key=lambda t: out["single_by_threads"][t]["p50_ms"])
    out["single"] = {**out["single_by_threads"][best], "threads": int(best)}
    nt0 = args.query_threads[0]
    with cpu_lock(lock), threads(nt0):
        out["agreement@10"] = agreement(found[:nq_gt], gt_rows)
        out["source_page_in_top10"] = round(
            float(np.mean([s in f for s, f in zip(sources[:single], found)])), 4
        )
        # stage split on the same queries
        t_first, _ = timed(
            lambda q: index.first_stage(q, args.candidates)[0], queries[: min(single, 200)]
        )
        out["stages_p50_ms"] = {"stage1+2 (IVF + pooled)": percentiles(t_first)["p50_ms"]}
        out["stages_p50_ms"]["stage3 (exact rerank) ~"] = round(
            out["single"]["p50_ms"] - out["stages_p50_ms"]["stage1+2 (IVF + pooled)"], 2
        )
        # the trade-off: candidates and probes on the ground-truth queries
        sweep = []
        for cand, nprobe, tk, sl in args.sweep:
            kw = dict(candidates=cand, nprobe=nprobe, token_k=tk, shortlist=sl)
            t_s, f_s = timed(lambda q: index.search(q, K, **kw)[0], queries[:nq_gt])
            sweep.append({**kw, **percentiles(t_s), "agreement@10": agreement(f_s, gt_rows)})
            print(f"  ours sweep {kw}: {sweep[-1]}", flush=True)
        out["sweep"] = sweep
        out["rss_after_queries"] = rss()

        # cold page cache: the patch file evicted, new queries read their candidates from disk
        evict(store)
        cold_q = queries[single : single + args.cold] or queries[: args.cold]
        t_cold, _ = timed(lambda q: index.search(q, K, **default)[0], cold_q)
        out["single_cold_patch_file"] = percentiles(t_cold)

        # a filter allowing 10 % of the pages
        rng = np.random.default_rng(5)
        allowed = rng.random(len(store)) < 0.10
        nf = min(args.filter_queries, nq_gt)
        t_f, f_f = timed(lambda q: index.search(q, K, live=allowed, **default)[0], queries[:nf])
        out["filter_10pct"] = percentiles(t_f)
        out["filter_10pct"]["respects_mask"] = bool(all(allowed[f].all() for f in f_f))

    # filtered truth (exhaustive over the allowed pages; outside the lock, one thread)
    with threads(1):
        f_truth = [index.search(q, K, live=allowed, exact=True)[0] for q in queries[:nf]]
    out["filter_10pct"]["agreement@10"] = agreement(f_f, f_truth)

    # delete 1 % of the pages
    rng = np.random.default_rng(6)
    gone = rng.choice(len(store), max(1, len(store) // 100), replace=False)
    with cpu_lock(lock), threads(nt0):
        t = time.perf_counter()
        index.delete(gone)
        t_del = time.perf_counter() - t
        live_file = WORK / "live-scratch.npy"
        t = time.perf_counter()
        np.save(live_file, index.live)  # what save() writes for a deletion
        t_persist = time.perf_counter() - t
        live_file.unlink()
        t_d, f_d = timed(lambda q: index.search(q, K, **default)[0], queries[:nq_gt])
    dead = np.zeros(len(store), bool)
    dead[gone] = True
    truth_after = [[r for r in row if not dead[r]][:K] for row in gt_rows]
    out["delete_1pct"] = {
        "pages": int(len(gone)),
        "delete_s": round(t_del, 4),
        "persist_live_mask_s": round(t_persist, 4),
        "returns_deleted": bool(any(dead[f].any() for f in f_d)),
        "agreement@10_after": agreement(f_d, truth_after),
        **percentiles(t_d),
    }

    # save + load round trip (copies the patch file: only where that is cheap)
    if len(store) <= args.save_max_pages:
        target = WORK / f"index-{key_of(args)}"
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        with cpu_lock(lock), threads(1):
            t = time.perf_counter()
            index.save(target)
            t_save = time.perf_counter() - t
            t = time.perf_counter()
            loaded = MultiVectorIndex.load(target)
            t_load = time.perf_counter() - t
            same = all(
                np.array_equal(index.search(q, K)[0], loaded.search(q, K)[0]) for q in queries[:20]
            )
        out["save_load"] = {
            "save_s_incl_patch_copy": round(t_save, 2),
            "load_s": round(t_load, 2),
            "identical_results": bool(same),
        }
        shutil.rmtree(target, ignore_errors=True)
    return out


def pooling_study(args, store, queries, gt_rows) -> dict:
    """Which first stage finds the exact top 10: recall of the exact top 10 within the top c
    pages of (a) exhaustive MaxSim over each pooling's vectors, (b) our IVF stage 1 alone
    (XTR-style imputation, no stage 2), (c) stages 1 + 2 as shipped. Not timed."""
    import numpy as np

    from polylens.search.maxsim import pool_pages
    from polylens.search.multivector_index import MultiVectorIndex

    cuts = (50, 100, 200, 400)
    nq = len(gt_rows)
    plen = int(store.lengths()[0])

    def recall(orders) -> dict:
        return {
            str(c): round(
                float(np.mean([len(set(o[:c]) & set(t[:K])) / K for o, t in zip(orders, gt_rows)])),
                4,
            )
            for c in cuts
        }

    out: dict = {"exhaustive_pooled": {}}
    mm = store.vectors
    with threads(1):
        for method, s in args.pooling_study:
            t0 = time.perf_counter()
            pooled = np.empty((len(store), s, store.dim), np.float16)
            per = 4096
            for a in range(0, len(store), per):
                b = min(len(store), a + per)
                block = np.asarray(mm[a * plen : b * plen], np.float32).reshape(b - a, plen, -1)
                if method == "mean":
                    pooled[a:b] = pool_pages(block, 1, method="rows")
                else:
                    pooled[a:b] = pool_pages(block, s, method=method)
            t_pool = time.perf_counter() - t0
            flat = pooled.reshape(-1, store.dim).astype(np.float32)
            orders = []
            for q in queries[:nq]:
                sc = (flat @ q.T).reshape(len(store), s, -1).max(axis=1).sum(axis=1)
                top = np.argpartition(-sc, cuts[-1])[: cuts[-1]]
                orders.append(top[np.argsort(-sc[top])])
            name = f"{method} x{s}"
            out["exhaustive_pooled"][name] = {**recall(orders), "pool_s": round(t_pool, 1)}
            print(f"  pooling study {name}: {out['exhaustive_pooled'][name]}", flush=True)
            del flat, pooled
        index = MultiVectorIndex.build(store, segments=args.segments, codec=args.codec)
        # stage 1 alone: with shortlist == candidates, stage 2 only reorders stage 1's picks
        out["ivf_stage1_alone"] = {
            str(c): round(
                float(
                    np.mean(
                        [
                            len(set(index.first_stage(q, c, shortlist=c)[0]) & set(t[:K])) / K
                            for q, t in zip(queries[:nq], gt_rows)
                        ]
                    )
                ),
                4,
            )
            for c in (100, 200, 400)
        }
        staged = [index.first_stage(q, cuts[-1])[0] for q in queries[:nq]]
        out["ivf_stage1+2"] = recall(staged)
        out["config"] = {
            "segments": index.segments,
            "nprobe": index.nprobe,
            "token_k": index.token_k,
            "shortlist": index.shortlist,
        }
    print(f"  stage 1 alone: {out['ivf_stage1_alone']}; stages 1+2: {out['ivf_stage1+2']}")
    return out


def run_exhaustive(args, store, queries, gt_rows, lock) -> dict:
    import numpy as np
    from _cpu_lock import cpu_lock

    from polylens.search.multivector_index import MultiVectorIndex

    n = min(args.exhaustive_single, len(gt_rows))
    no_pooled = np.broadcast_to(np.zeros((1, 1, store.dim), np.float16), (len(store), 1, store.dim))
    plain = MultiVectorIndex(store, no_pooled, None)  # exact mode only: no first stage
    systems = {
        "numpy exhaustive": lambda q: exhaustive_numpy(store, q, K),
        "torch exhaustive (byaldi-style)": lambda q: exhaustive_torch(store, q, K),
        "polylens exact=True": lambda q: plain.search(q, K, exact=True)[0],
    }
    out = {}
    for name, fn in systems.items():
        by_threads = {}
        for nt in args.query_threads:
            with cpu_lock(lock), threads(nt):
                fn(queries[0])  # warm: page cache and threads
                times, found = [], []
                for q in queries[:n]:
                    t = time.perf_counter()
                    found.append(fn(q))
                    times.append((time.perf_counter() - t) * 1000)
            by_threads[str(nt)] = {
                **percentiles(times),
                "agreement@10": agreement(found, gt_rows[:n]),
            }
            print(f"  {name}, {nt} thread(s): {by_threads[str(nt)]}", flush=True)
        best = min(by_threads, key=lambda t: by_threads[t]["p50_ms"])
        out[name] = {**by_threads[best], "threads": int(best), "by_threads": by_threads}
    return out


# -- LanceDB (in a subprocess: LANCE_CPU_THREADS is read at start) ----------------------
def lance_worker(argv: list[str]) -> int:
    """``--lance-worker build|query``: run in a child process, print one JSON line."""
    import lancedb
    import numpy as np
    import pyarrow as pa
    from _multivector_data import PageCorpus

    p = argparse.ArgumentParser()
    p.add_argument("step")
    p.add_argument("--pages", type=int)
    p.add_argument("--patches", type=int)
    p.add_argument("--dim", type=int)
    p.add_argument("--queries", type=int)
    p.add_argument("--gt", type=str)
    p.add_argument("--single", type=int)
    p.add_argument("--nprobes", type=int, default=20)
    a = p.parse_args(argv)
    corpus = PageCorpus(WORK, a.patches, a.dim)
    store = corpus.ensure(a.pages, log=False).head(a.pages)
    path = WORK / f"lance-{a.pages}x{a.patches}x{a.dim}"
    db = lancedb.connect(str(path))
    if a.step == "build":
        t0 = time.perf_counter()
        vec_t = pa.list_(pa.list_(pa.float16(), a.dim))
        schema = pa.schema([pa.field("id", pa.int64()), pa.field("vectors", vec_t)])

        def batches():
            per = 2000
            for s in range(0, a.pages, per):
                e = min(a.pages, s + per)
                lo, hi = int(store.offsets[s]), int(store.offsets[e])
                flat = np.ascontiguousarray(store.vectors[lo:hi]).reshape(-1)
                inner = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float16()), a.dim)
                offs = pa.array((store.offsets[s : e + 1] - lo).astype(np.int32))
                outer = pa.ListArray.from_arrays(offs, inner)
                yield pa.record_batch([pa.array(np.arange(s, e)), outer], schema=schema)

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        table = db.create_table("pages", data=reader, mode="overwrite")
        t1 = time.perf_counter()
        table.create_index(metric="cosine", vector_column_name="vectors", index_type="IVF_PQ")
        t2 = time.perf_counter()
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        print(
            json.dumps(
                {
                    "write_s": round(t1 - t0, 1),
                    "index_s": round(t2 - t1, 1),
                    "disk_mb": round(size / 2**20),
                }
            )
        )
        return 0
    table = db.open_table("pages")
    queries, _ = corpus.queries(a.pages, a.queries)
    gt = np.load(a.gt)["rows"]
    res = {}
    for name, refine in (("IVF_PQ", None), ("IVF_PQ + refine_factor=10", 10)):

        def run(q):
            s = table.search(q, vector_column_name="vectors").limit(K).nprobes(a.nprobes)
            if refine:
                s = s.refine_factor(refine)
            return s.select(["id", "_distance"]).to_arrow()["id"].to_numpy()

        for q in queries[:3]:
            run(q)
        times, found = [], []
        for q in queries[: a.single]:
            t = time.perf_counter()
            found.append(run(q))
            times.append((time.perf_counter() - t) * 1000)
        res[name] = {**percentiles(times), "agreement@10": agreement(found[: len(gt)], gt)}
    res["nprobes"] = a.nprobes
    print(json.dumps(res))
    return 0


def run_lance(args, gt_cache: Path, lock) -> dict:
    from _cpu_lock import cpu_lock

    base = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--lance-worker",
    ]
    common = ["--pages", str(args.pages), "--patches", str(args.patches), "--dim", str(args.dim)]

    def child(step: str, n_threads: int, extra: list[str]) -> dict:
        env = {**os.environ, "LANCE_CPU_THREADS": str(n_threads), "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(
            [*base, step, *common, *extra], env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode:
            raise RuntimeError(f"lance {step} failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    out: dict = {}
    with cpu_lock(lock):
        out["build"] = child("build", 1, [])
    out["build"]["threads"] = 1
    print(f"  lance build: {out['build']}", flush=True)
    with cpu_lock(lock):
        out["query"] = child(
            "query",
            2,
            [
                "--queries",
                str(args.queries),
                "--gt",
                str(gt_cache),
                "--single",
                str(args.lance_single),
            ],
        )
    print(f"  lance query: {out['query']}", flush=True)
    return out


# -- report ----------------------------------------------------------------------------
def _f(x, nd=2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def print_report(results: dict) -> None:
    header = ["system", "p50 ms", "p99 ms", "agree@10", "queries", "build s", "RAM MB", "note"]
    for key, run in sorted(
        results.get("runs", {}).items(), key=lambda kv: int(kv[0].split("x")[0])
    ):
        rows = []
        ours = run.get("ours")
        if ours:
            cfg = ours["config"]
            ram = ours["ram_mb"]["index_parts"]
            rows.append(
                [
                    "polylens MultiVectorIndex",
                    _f(ours["single"]["p50_ms"]),
                    _f(ours["single"]["p99_ms"]),
                    _f(ours["agreement@10"], 3),
                    str(ours["single"]["n"]),
                    _f(ours["build_s"], 1),
                    _f(ram, 0),
                    f"cand={cfg['candidates']} nprobe={cfg['nprobe']} token_k={cfg['token_k']} "
                    f"shortlist={cfg['shortlist']}",
                ]
            )
            for nt, e in ours.get("single_by_threads", {}).items():
                rows.append(
                    [
                        f"  {nt} thread(s), warm",
                        _f(e["p50_ms"]),
                        _f(e["p99_ms"]),
                        "",
                        str(e["n"]),
                        "",
                        "",
                        "FAISS + BLAS + torch threads",
                    ]
                )
                fp = ours.get("first_pass_by_threads", {}).get(nt)
                if fp:
                    rows.append(
                        [
                            f"  {nt} thread(s), first pass",
                            _f(fp["p50_ms"]),
                            _f(fp["p99_ms"]),
                            "",
                            str(fp["n"]),
                            "",
                            "",
                            "page cache as found",
                        ]
                    )
            for s in ours.get("sweep", []):
                rows.append(
                    [
                        f"  cand={s['candidates']} nprobe={s['nprobe']} tk={s['token_k']} sl={s['shortlist']}",
                        _f(s["p50_ms"]),
                        _f(s["p99_ms"]),
                        _f(s["agreement@10"], 3),
                        str(s["n"]),
                        "",
                        "",
                        "sweep",
                    ]
                )
            c = ours.get("single_cold_patch_file")
            if c:
                rows.append(
                    [
                        "  patch file evicted",
                        _f(c["p50_ms"]),
                        _f(c["p99_ms"]),
                        "",
                        str(c["n"]),
                        "",
                        "",
                        "cold reads",
                    ]
                )
            f = ours.get("filter_10pct")
            if f:
                rows.append(
                    [
                        "  + filter (10 % of pages)",
                        _f(f["p50_ms"]),
                        _f(f["p99_ms"]),
                        _f(f.get("agreement@10"), 3),
                        str(f["n"]),
                        "",
                        "",
                        "vs exact within filter",
                    ]
                )
            d = ours.get("delete_1pct")
            if d:
                rows.append(
                    [
                        "  after deleting 1 %",
                        _f(d["p50_ms"]),
                        _f(d["p99_ms"]),
                        _f(d["agreement@10_after"], 3),
                        str(d["n"]),
                        "",
                        "",
                        f"delete {d['delete_s'] * 1000:.1f} ms",
                    ]
                )
        for name, e in run.get("exhaustive", {}).items():
            if not isinstance(e, dict):
                continue
            rows.append(
                [
                    name,
                    _f(e["p50_ms"]),
                    _f(e["p99_ms"]),
                    _f(e["agreement@10"], 3),
                    str(e["n"]),
                    "0",
                    "",
                    f"reads every vector; {e.get('threads', 2)} thread(s)",
                ]
            )
        lance = run.get("lance")
        if lance and "query" in lance:
            b = lance["build"]
            for name, e in lance["query"].items():
                if not isinstance(e, dict):
                    continue
                rows.append(
                    [
                        f"LanceDB multivector {name}",
                        _f(e["p50_ms"]),
                        _f(e["p99_ms"]),
                        _f(e["agreement@10"], 3),
                        str(e["n"]),
                        _f(b["write_s"] + b["index_s"], 1),
                        "",
                        f"nprobes={lance['query']['nprobes']}, disk {b['disk_mb']} MB",
                    ]
                )
        elif lance:
            rows.append(["LanceDB multivector", "", "", "", "", "", "", lance.get("skipped", "")])
        study = run.get("pooling_study")
        if study:
            print(f"\n### {key}: first stages, recall of the exact top 10 within the top c pages")
            for name, r in study["exhaustive_pooled"].items():
                cells = ", ".join(f"c={c}: {r[c]:.3f}" for c in ("50", "100", "200", "400"))
                print(f"  exhaustive MaxSim over pooled vectors, {name:10s} {cells}")
            r = study["ivf_stage1_alone"]
            print(
                "  IVF stage 1 alone (imputation)          "
                + ", ".join(f"c={c}: {v:.3f}" for c, v in r.items())
            )
            r = study["ivf_stage1+2"]
            print(
                "  IVF stages 1 + 2 (as shipped)           "
                + ", ".join(f"c={c}: {v:.3f}" for c, v in r.items())
            )
        if not rows:
            continue
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        gtq = run.get("gt_queries")
        print(
            f"\n### {key} (pages x patches x dim), k={K}, agreement vs exhaustive MaxSim on {gtq} queries"
        )
        for r in [header, ["-" * w for w in widths], *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if ours:
            _print_checks(key, run)


def _print_checks(key: str, run: dict) -> None:
    ours = run["ours"]
    p50, p99 = ours["single"]["p50_ms"], ours["single"]["p99_ms"]
    agree = ours["agreement@10"]
    ram_gb = ours["ram_mb"]["index_parts"] / 1024
    ok = (
        p50 <= TARGET_P50_MS
        and p99 <= TARGET_P99_MS
        and agree >= TARGET_AGREEMENT
        and ram_gb <= TARGET_RAM_GB
    )
    scope = (
        "TARGET"
        if key.startswith("1000000x64") or key.startswith("100000x700")
        else "target applies at 1M x 64 / 100k x 700"
    )
    print(
        f"  check ({scope}; best thread count: {ours['single'].get('threads')}): p50 {p50} ms (<= {TARGET_P50_MS}), p99 {p99} ms (<= {TARGET_P99_MS}), "
        f"agreement {agree} (>= {TARGET_AGREEMENT}), index RAM {ram_gb:.2f} GB (<= {TARGET_RAM_GB}) "
        f"-> {'PASS' if ok else 'FAIL'}"
    )
    d = ours.get("delete_1pct", {})
    print(
        f"  delete 1 % ({d.get('pages')} pages): {d.get('delete_s')} s + {d.get('persist_live_mask_s')} s to persist the mask; "
        f"deleted pages returned: {d.get('returns_deleted')}"
    )
    print(
        f"  stages (p50): {ours.get('stages_p50_ms')}; RSS after queries {ours.get('rss_after_queries')}"
    )
    ratios = []
    for name, e in run.get("exhaustive", {}).items():
        if isinstance(e, dict):
            ratios.append(f"{name} x{e['p50_ms'] / p50:.0f}")
    q = run.get("lance", {}).get("query", {})
    for name, e in q.items():
        if isinstance(e, dict):
            ratios.append(f"LanceDB {name} x{e['p50_ms'] / p50:.2f}")
    if ratios:
        print("  p50 of peer / ours: " + ", ".join(ratios))
    if "save_load" in ours:
        print(f"  save/load: {ours['save_load']}")


# -- main ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--lance-worker":
        return lance_worker(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--patches", type=int, default=64)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=500, help="query set size")
    parser.add_argument("--single", type=int, default=500, help="queries timed one at a time")
    parser.add_argument("--gt-queries", type=int, default=200, help="queries with exact truth")
    parser.add_argument("--exhaustive-single", type=int, default=10)
    parser.add_argument("--cold", type=int, default=50, help="queries after evicting patches")
    parser.add_argument("--filter-queries", type=int, default=50)
    parser.add_argument("--segments", type=int, default=None)
    parser.add_argument("--pooling", default="kmeans", choices=["kmeans", "rows"])
    parser.add_argument("--codec", default="pq4", choices=["pq4", "sq8", "fp16", "flat"])
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--token-k", type=int, default=1024)
    parser.add_argument("--shortlist", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument(
        "--sweep",
        nargs="*",
        default=["100:32:1024:2000", "400:32:1024:2000", "200:64:2048:4000", "200:16:512:1000"],
        help="candidates:nprobe:token_k:shortlist settings timed on the ground-truth queries",
    )
    parser.add_argument(
        "--pooling-study",
        nargs="*",
        default=None,
        help="method:segments first stages to compare by recall, e.g. mean:1 rows:8 kmeans:8",
    )
    parser.add_argument("--query-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--lance-max-pages", type=int, default=200_000)
    parser.add_argument("--lance-single", type=int, default=100)
    parser.add_argument("--save-max-pages", type=int, default=200_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ours", "exhaustive", "lance"])
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock", help="'' for no CPU lock")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args(argv)
    if args.report:
        print_report(load_results())
        return 0
    args.sweep = [tuple(int(x) for x in s.split(":")) for s in args.sweep]
    if args.pooling_study is not None:
        study = args.pooling_study or ["mean:1", "rows:8", "kmeans:8", "rows:16"]
        args.pooling_study = [(m, int(s)) for m, s in (x.split(":") for x in study)]

    from _multivector_data import PageCorpus, similarity_profile

    WORK.mkdir(parents=True, exist_ok=True)
    key = key_of(args)
    corpus = PageCorpus(WORK, args.patches, args.dim)
    t0 = time.perf_counter()
    with threads(1):
        store = corpus.ensure(args.pages).head(args.pages)
    print(f"== {key}: data ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    queries, sources = corpus.queries(args.pages, args.queries)
    gt_n = min(args.gt_queries, args.queries)
    gt_cache = WORK / f"gt-{key}-q{gt_n}.npz"
    t0 = time.perf_counter()
    with threads(1):
        gt_rows, _ = ground_truth(store, queries[:gt_n], K_GT, gt_cache)
    print(f"  ground truth for {gt_n} queries ({time.perf_counter() - t0:.0f} s)", flush=True)

    results = load_results()
    run = results["runs"].setdefault(key, {})
    run.update(
        {
            "command": "python bench/multivector.py " + " ".join(argv),
            "machine": machine(),
            "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
            "corpus": corpus.describe(),
            "gt_queries": gt_n,
            "profile": similarity_profile(corpus, args.pages, queries, sources),
        }
    )
    command = run["command"]
    if args.pooling_study:
        run["pooling_study"] = pooling_study(args, store, queries, gt_rows)
        run["pooling_study"]["command"] = command
        save_results(results)
    if "ours" not in args.skip:
        run["ours"] = run_ours(args, store, queries, sources, gt_rows, args.lock)
        run["ours"]["command"] = command
        save_results(results)
    if "exhaustive" not in args.skip:
        run["exhaustive"] = run_exhaustive(args, store, queries, gt_rows, args.lock)
        run["exhaustive"]["command"] = command  # type: ignore[assignment]
        save_results(results)
    if "lance" not in args.skip:
        if args.pages <= args.lance_max_pages:
            run["lance"] = run_lance(args, gt_cache, args.lock)
        else:
            run["lance"] = {"skipped": f"above --lance-max-pages {args.lance_max_pages}"}
        run["lance"]["command"] = command
        save_results(results)
    print_report({"runs": {key: run}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
