"""Near-duplicates: which Hamming threshold, what pHash catches and misses, what grouping costs.

Question: at which distance should two pHashes (``hamming.dct_hash``) count as near-copies
(``phash.NEAR_DISTANCE``), which edits does that catch, does the hash equal
``imagehash.phash`` bit for bit, and how fast is grouping at 100k?

* pictures: scikit-image's bundled natural photos (offline; synthetic, binary, tiny ones
  skipped) and 17 copies of each: JPEG q30/45/60; bicubic resize to 25/50/75 %; 3/5/8 % cut
  off every side ("crop-sides") or off the width and height at the bottom-right corner
  ("crop-corner"); brightness x0.8/x1.2; bicubic rotation by 1/2/3 degrees, expand=False,
  then the largest centred rectangle without black corners (0.9-2.5 % off each side).
  Truth: a photo and its copies are one group; all else is distinct, including the hard
  negatives: each photo's left and right halves (no overlap; alone, not the photo either).
* quality, radius 0-20: pairwise precision/recall/F1 over all pairs (predicted by
  ``near_pairs``) and B-cubed P/R/F1 of ``star_groups`` (per picture: the share of its
  predicted group, itself included, in its true group, and of its true group in its
  predicted group, averaged; ungrouped = alone); recall per copy type.
* recommended: the largest radius with pairwise precision >= 0.99, not the F1 maximum:
  here 1 pair in 20 is a true copy, in a library far fewer (false pairs grow with the
  square of the collection), so an F1-tuned radius floods a big library with false copies.
  The false-pair rate per negative pair is printed (x N = false copies a query gets among
  N pictures). Even radii only: every pHash has 32 ones (bits above the median of 64), so
  distances are even and 2k+1 finds what 2k finds.
* peer: ``imagehash.phash`` on the same pictures: equal bits, mean distance, ms per
  pre-decoded picture (grey + resize + DCT, both), and its own quality columns.
* speed, synthetic hashes (random; 10 % in clusters of five, 1-8 random bits from a
  centre): ``near_pairs`` + ``star_groups`` at the chosen radius, 6 and 10, peak RSS growth;
  FAISS's exact IndexBinaryFlat range search; numpy brute force (XOR + popcount in blocks)
  on 20k, where near_pairs must find exactly its pairs, and on 100k if 20k x 25 predicts
  under ``--brute-limit`` s (else extrapolated, marked so); at the chosen radius, the ways
  not taken: FAISS multi-index hashing (exact) and a binary IVF (approximate), timed, with
  the share of near_pairs' exact pairs each finds; a ``distances()`` scan of 1M hashes,
  checked against a true popcount.

Every timed measurement holds the CPU lock (``--lock``). Fixed seed.

    pip install -e ".[bench]"                  # imagehash, the peer, is in the bench extra
    python bench/near_duplicates.py            # 1.5-3 min on 2 cores
    python bench/near_duplicates.py --quick    # 20k synthetic hashes only
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ingest import cpu_lock  # noqa: E402

from polylens.representations.hamming import (  # noqa: E402
    Pair,
    dct_hash,
    distances,
    near_pairs,
    star_groups,
)
from polylens.representations.phash import NEAR_DISTANCE  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "near_duplicates.json"
# Skipped: color.png (synthetic wheel), horse.png (binary), logo, phantom, chessboard_*,
# microaneurysms (102 px), lfw_subset (25 px), motorcycle_right (stereo twin of
# motorcycle_left: neither duplicate nor distinct); the other samples need a download.
PHOTOS = (
    *("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png"),
    *("clock_motion.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg"),
    *("ihc.png", "moon.png", "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg"),
    "text.png",
)
RADII = range(21)
SEED = 20240611


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of int64 values. np.bitwise_count on a signed type counts |x|, not the bits."""
    return np.bitwise_count(np.asarray(x, dtype=np.int64).view(np.uint64))


def variants(photo: Any) -> dict[str, Any]:
    from PIL import Image, ImageEnhance

    w, h = photo.size
    out: dict[str, Any] = {}
    for q in (30, 45, 60):
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=q)
        out[f"jpeg-q{q}"] = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    for s in (25, 50, 75):
        out[f"resize-{s}%"] = photo.resize((w * s // 100, h * s // 100), Image.Resampling.BICUBIC)
    for p in (3, 5, 8):
        dx, dy = round(w * p / 100), round(h * p / 100)
        out[f"crop-sides-{p}%"] = photo.crop((dx, dy, w - dx, h - dy))
        out[f"crop-corner-{p}%"] = photo.crop((0, 0, w - dx, h - dy))
    out["bright-0.8"] = ImageEnhance.Brightness(photo).enhance(0.8)
    out["bright-1.2"] = ImageEnhance.Brightness(photo).enhance(1.2)
    for deg in (1, 2, 3):
        c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
        keep = min(w / (w * c + h * s), h / (w * s + h * c))  # inside the turned frame
        kw, kh = int(w * keep) - 2, int(h * keep) - 2
        left, top = (w - kw) // 2, (h - kh) // 2
        turned = photo.rotate(deg, Image.Resampling.BICUBIC, expand=False)
        out[f"rotate-{deg}deg"] = turned.crop((left, top, left + kw, top + kh))
    return out


def pair_scores(pairs: list[Pair], truth: set[tuple[int, int]], negatives: int) -> dict:
    found = {(p.a, p.b) for p in pairs}
    hit = len(found & truth)
    precision, recall = (hit / len(found) if found else 1.0), hit / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if hit else 0.0
    false = len(found) - hit
    rates = {"false_pairs": false, "false_rate": false / negatives}
    return {"precision": precision, "recall": recall, "f1": f1, **rates}


def bcubed(groups: list[list[tuple[int, int]]], labels: np.ndarray) -> dict:
    predicted = np.arange(len(labels))  # ungrouped pictures are their own group
    for g, group in enumerate(groups):
        predicted[[row for row, _ in group]] = len(labels) + g
    p = r = 0.0
    for i in range(len(labels)):
        same_pred, same_true = predicted == predicted[i], labels == labels[i]
        both = np.count_nonzero(same_pred & same_true)
        p += both / np.count_nonzero(same_pred) / len(labels)
        r += both / np.count_nonzero(same_true) / len(labels)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r)}


def sweep(hashes: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[int, dict]:
    same = labels[:, None] == labels[None, :]
    truth = set(zip(*map(np.ndarray.tolist, np.nonzero(np.triu(same, 1)))))
    negatives = len(labels) * (len(labels) - 1) // 2 - len(truth)
    table = {}
    for radius in RADII:
        pairs = near_pairs(hashes, radius)
        groups = bcubed(star_groups(pairs, names), labels)
        table[radius] = {"pairs": pair_scores(pairs, truth, negatives), "bcubed": groups}
    return table


def quality(lock: str) -> dict:
    import imagehash
    import skimage
    from PIL import Image

    data = Path(skimage.__file__).parent / "data"
    used = [name for name in PHOTOS if (data / name).exists()]
    names, labels, pictures = [], [], []
    for label, name in enumerate(used):
        photo = Image.open(data / name).convert("RGB")
        w, h = photo.size
        halves = {"left-half": (0, 0, w // 2, h), "right-half": (w // 2, 0, w, h)}
        halves = {kind: photo.crop(box) for kind, box in halves.items()}
        for kind, picture in {"original": photo, **variants(photo), **halves}.items():
            names.append(f"{name}:{kind}")
            labels.append(label if "half" not in kind else 1000 + len(names))  # halves: alone
            pictures.append(picture)
    ours = [dct_hash(p) for p in pictures]
    keep = [i for i, h in enumerate(ours) if h is not None]
    flat = [names[i] for i in range(len(names)) if i not in keep]
    names, pictures = [names[i] for i in keep], [pictures[i] for i in keep]
    labels_a, hashes = np.array([labels[i] for i in keep]), np.array([ours[i] for i in keep])
    apart = popcount(hashes[:, None] ^ hashes[None, :])
    source = [n.split(":") for n in names]
    by_variant: dict[str, dict[str, int]] = {}
    negative: dict[str, list[int]] = {}
    closest: list[tuple[int, str, str]] = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            if labels_a[a] == labels_a[b]:
                if source[a][1] == "original":
                    by_variant.setdefault(source[b][1], {})[source[b][0]] = int(apart[a, b])
                continue
            halves = "half" in source[a][1] and "half" in source[b][1]
            kind = "half vs other half" if halves else "half vs its photo"
            kind = kind if source[a][0] == source[b][0] else "different photos"
            negative.setdefault(kind, []).append(int(apart[a, b]))
            closest.append((int(apart[a, b]), names[a], names[b]))
    bits = [imagehash.phash(p).hash.reshape(-1) for p in pictures]  # row-major, as dct_hash
    theirs = np.array([np.packbits(b).view(">i8")[0] for b in bits], dtype=np.int64)
    peer_apart = popcount(hashes ^ theirs)
    timing = {}
    for label, fn in (("polylens dct_hash", dct_hash), ("imagehash.phash", imagehash.phash)):
        best = min(measure(lambda: [fn(p) for p in pictures], lock)[1] for _ in range(3))
        timing[label] = 1000 * best / len(pictures)
    return {
        "photos": used,
        "pictures": len(names),
        "flat_skipped": flat,
        "hashes_with_top_bit_set": float(np.mean(hashes < 0)),
        "distance_by_variant": by_variant,
        # A histogram per kind (distance -> pairs), not 61k raw distances.
        "negative_distances": {k: dict(sorted(Counter(v).items())) for k, v in negative.items()},
        "closest_negatives": sorted(closest)[:8],
        "thresholds": sweep(hashes, labels_a, names),
        "imagehash": {
            "equal_share": float(np.mean(peer_apart == 0)),
            "mean_hamming": float(peer_apart.mean()),
            "differing": {names[i]: int(peer_apart[i]) for i in np.flatnonzero(peer_apart)},
            "ms_per_picture": timing,
            "thresholds": sweep(theirs, labels_a, names),
        },
    }


def measure(fn: Callable[[], Any], lock: str) -> tuple[Any, float, float]:
    """fn's value, seconds, and peak RSS growth in MB (polled every 2 ms), under the lock."""
    import psutil

    me, done = psutil.Process(), threading.Event()
    start = peak = me.memory_info().rss

    def poll() -> None:
        nonlocal peak
        while not done.wait(0.002):
            peak = max(peak, me.memory_info().rss)

    with cpu_lock(lock):
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        started = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - started
        done.set()
        poller.join()
    return value, seconds, (max(peak, me.memory_info().rss) - start) / 2**20


def synthetic(n: int, rng: np.random.Generator) -> np.ndarray:
    hashes = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64)
    for start in range(0, n // 10 - 4, 5):
        for j in range(1, 5):
            bits = rng.choice(64, size=int(rng.integers(1, 9)), replace=False).astype(np.uint64)
            flip = np.bitwise_or.reduce(np.left_shift(np.uint64(1), bits))
            hashes[start + j] = hashes[start] ^ np.uint64(flip).view(np.int64)
    return rng.permutation(hashes)


def brute_pairs(hashes: np.ndarray, radius: int, block: int = 64) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for i in range(0, len(hashes), block):
        a, b = np.nonzero(popcount(hashes[i : i + block, None] ^ hashes[None, i:]) <= radius)
        keep = b > a  # column b is hash i + b, row a is hash i + a
        found.update(zip((a[keep] + i).tolist(), (b[keep] + i).tolist()))
    return found


def faiss_flat_pairs(hashes: np.ndarray, radius: int) -> int:
    import faiss

    codes = np.ascontiguousarray(hashes.astype(">i8").view(np.uint8).reshape(-1, 8))
    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    limits, _, found = index.range_search(codes, radius + 1)
    rows = np.repeat(np.arange(len(hashes)), np.diff(limits.astype(np.int64)))
    return int(np.count_nonzero(rows < found))


def _pairs_of(index: Any, codes: np.ndarray, radius: int) -> set[tuple[int, int]]:
    limits, _, found = index.range_search(codes, radius + 1)
    rows = np.repeat(np.arange(len(codes)), np.diff(limits.astype(np.int64)))
    keep = rows < found
    return set(zip(rows[keep].tolist(), found[keep].tolist(), strict=True))


def alternatives(hashes: np.ndarray, radius: int, lock: str) -> dict:
    """The ways near_pairs did not take at this radius, against its exact pairs: FAISS
    multi-index hashing (four 16-bit substrings, radius // 4 flips: exact, never all
    pairs) and a binary inverted file (sqrt(n) lists, 32 probed: approximate)."""
    import faiss

    codes = np.ascontiguousarray(hashes.astype(">i8").view(np.uint8).reshape(-1, 8))
    truth = {(p.a, p.b) for p in near_pairs(hashes, radius)}

    def mih() -> set[tuple[int, int]]:
        index = faiss.IndexBinaryMultiHash(64, 4, 16)
        index.nflip = radius // 4
        index.add(codes)
        return _pairs_of(index, codes, radius)

    def ivf() -> set[tuple[int, int]]:
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(64), 64, round(len(codes) ** 0.5))
        index.train(codes)
        index.add(codes)
        index.nprobe = 32
        return _pairs_of(index, codes, radius)

    out = {}
    for name, fn in (("multi-index hashing", mih), ("binary IVF, nprobe 32", ivf)):
        found, seconds, _ = measure(fn, lock)
        recall = len(found & truth) / len(truth) if truth else 1.0
        out[name] = {"seconds": seconds, "recall_of_exact_pairs": recall}
    return out


def speed(n: int, chosen: int, lock: str, brute_limit_s: float) -> dict:
    rng = np.random.default_rng(SEED)
    hashes, order = synthetic(n, rng), list(range(n))
    radii = sorted({6, 10, chosen})
    out: dict[str, Any] = {"hashes": n}
    for radius in radii:
        pairs, near_s, mb = measure(lambda: near_pairs(hashes, radius), lock)
        groups, groups_s, _ = measure(lambda: star_groups(pairs, order), lock)
        flat, flat_s, _ = measure(lambda: faiss_flat_pairs(hashes, radius), lock)
        out[f"radius {radius}"] = {
            **{"near_pairs_s": near_s, "star_groups_s": groups_s, "pairs": len(pairs)},
            **{"groups": len(groups), "near_pairs_peak_rss_growth_mb": mb},
            **{"faiss_flat_all_pairs_s": flat_s, "faiss_flat_pairs": flat},
        }
    small, check = hashes[:20_000], {}
    for radius in radii:
        brute, seconds, _ = measure(lambda: brute_pairs(small, radius), lock)
        same = {(p.a, p.b) for p in near_pairs(small, radius)} == brute
        check[radius] = {"brute_force_20k_s": seconds, "near_pairs_equal_brute_force": same}
    out["check_20k"] = check
    out["alternatives"] = alternatives(hashes, chosen, lock)
    factor, seconds = (n / 20_000) ** 2, check[chosen]["brute_force_20k_s"]
    measured = n <= 20_000 or seconds * factor < brute_limit_s
    if n > 20_000 and measured:
        seconds = measure(lambda: brute_pairs(hashes, chosen), lock)[1]
    elif not measured:
        seconds *= factor
    out["brute_force_all"] = {"seconds": seconds, "measured": measured, "extrapolated_x": factor}
    million = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, 10**6, dtype=np.int64)
    query = int(million[7])
    runs = sorted(measure(lambda: distances(million, query), lock)[1] for _ in range(21))
    wrong = int(np.count_nonzero(distances(million, query) != popcount(million ^ query)))
    out["scan_1m"] = {"p50_ms": 1000 * runs[10], "min_ms": 1000 * runs[0], "wrong": wrong}
    return out


def report(result: dict, chosen: int, best_f1: int) -> None:
    q, peer = result["quality"], result["quality"]["imagehash"]
    print(f"\n{len(q['photos'])} photos, {q['pictures']} pictures, flat: {q['flat_skipped']}")
    print("| radius | pairs P | R | F1 | false/negative pair | B-cubed P | R | F1 ", end="")
    print("| imagehash pairs P | R | F1 |\n" + "|---" * 11 + "|")
    for r in RADII:
        p, b = q["thresholds"][r]["pairs"], q["thresholds"][r]["bcubed"]
        i = peer["thresholds"][r]["pairs"]
        cells = [p["precision"], p["recall"], p["f1"], p["false_rate"]]
        cells += [b["precision"], b["recall"], b["f1"], i["precision"], i["recall"], i["f1"]]
        text = [f"{c:.1e}" if k == 3 else f"{c:.3f}" for k, c in enumerate(cells)]
        print(f"| {r}{' <-' if r == chosen else ''} | " + " | ".join(text) + " |")
    print(
        f"\nRECOMMENDED THRESHOLD: {chosen} (largest even radius with pairwise precision >= 0.99)"
    )
    print(f"  F1 peaks at {best_f1}; NEAR_DISTANCE in code = {NEAR_DISTANCE}")
    print(f"\nrecall per variant at {chosen} (distance to the original: mean, max, worst photo):")
    for kind, v in result["recommended"]["per_variant"].items():
        print(f"  {kind:15s} {v['recall']:.2f}  {v['mean']:4.1f}  {v['max']:2d}  {v['worst']}")
    for kind, v in result["recommended"]["negatives"].items():
        print(f"negatives, {kind}: {v['within']} of {v['pairs']} within {chosen}, min {v['min']}")
    print(f"closest negatives: {q['closest_negatives'][:3]}")
    times = ", ".join(f"{k} {v:.3f}" for k, v in peer["ms_per_picture"].items())
    print(f"\nimagehash.phash: equal bit for bit on {peer['equal_share']:.1%} of pictures,")
    print(f"  mean Hamming distance {peer['mean_hamming']:.3f}; ms per picture: {times}")
    for n, s in result["speed"].items():
        print(f"\ngrouping {n:,} synthetic hashes (s):")
        print("| radius | near_pairs | star_groups | pairs | groups | peak RSS MB | FAISS flat |")
        print("|---" * 7 + "|")
        for key in (k for k in s if k.startswith("radius")):
            g = s[key]
            cells = [g["near_pairs_s"], g["star_groups_s"], g["pairs"], g["groups"]]
            cells += [g["near_pairs_peak_rss_growth_mb"], g["faiss_flat_all_pairs_s"]]
            print(
                f"| {key[7:]} | "
                + " | ".join(f"{c:,}" if isinstance(c, int) else f"{c:.2f}" for c in cells)
                + " |"
            )
        for radius, c in s["check_20k"].items():
            same, took = c["near_pairs_equal_brute_force"], c["brute_force_20k_s"]
            print(f"20k, radius {radius}: near_pairs == brute force: {same} (brute {took:.2f} s)")
        for name, alt in s["alternatives"].items():
            print(
                f"{name} at {chosen}: {alt['seconds']:.1f} s, "
                f"recall of the exact pairs {alt['recall_of_exact_pairs']:.3f}"
            )
        bf = s["brute_force_all"]
        how = "measured" if bf["measured"] else f"20k x {bf['extrapolated_x']:.0f}, extrapolated"
        print(f"numpy brute force, all pairs at {chosen}: {bf['seconds']:.1f} s ({how})")
        m = s["scan_1m"]
        print(f"distances() over 1M: {m['p50_ms']:.2f} ms p50, wrong on {m['wrong']:,} of 1M")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="synthetic hashes")
    parser.add_argument("--quick", action="store_true", help="20k synthetic hashes only")
    parser.add_argument("--brute-limit", type=float, default=120.0, help="seconds")
    parser.add_argument("--lock", default="/tmp/polylens-cpu.lock")
    args = parser.parse_args()
    import faiss

    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    machine |= {"numpy": np.__version__, "faiss": faiss.__version__}
    machine |= {"faiss_threads": faiss.omp_get_max_threads(), "platform": platform.platform()}
    settings = {**vars(args), "seed": SEED, "near_distance_in_code": NEAR_DISTANCE}
    result: dict[str, Any] = {"machine": machine, "settings": settings}
    q = result["quality"] = quality(args.lock)
    table = q["thresholds"]
    chosen = max(r for r in RADII if r % 2 == 0 and table[r]["pairs"]["precision"] >= 0.99)
    best_f1 = max(RADII, key=lambda r: (table[r]["pairs"]["f1"], -r))
    per_variant = {}
    for kind, by_photo in q["distance_by_variant"].items():
        d = np.array(list(by_photo.values()))
        worst = max(by_photo, key=by_photo.__getitem__)
        per_variant[kind] = {"recall": float(np.mean(d <= chosen)), "mean": float(d.mean())}
        per_variant[kind] |= {"max": int(d.max()), "worst": worst}
    negatives = {
        kind: {
            "pairs": sum(hist.values()),
            "within": sum(n for d, n in hist.items() if d <= chosen),
            "min": min(hist),
        }
        for kind, hist in q["negative_distances"].items()
    }
    rule = "largest even radius with pairwise precision >= 0.99"
    result["recommended"] = {"threshold": chosen, "rule": rule, "f1_best_threshold": best_f1}
    result["recommended"] |= {"per_variant": per_variant, "negatives": negatives}
    sizes = [20_000] if args.quick else args.sizes
    result["speed"] = {n: speed(n, chosen, args.lock, args.brute_limit) for n in sizes}
    report(result, chosen, best_f1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
