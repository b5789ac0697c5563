"""Evaluator speed and memory, both sides in one process.

1. 2,000 × 2,000 (d=512, 5 positives per query): xmbench.evaluate_scores against torchmetrics'
   RetrievalMAP + RetrievalHitRate(top_k), both handed the same score matrix (shifted to be
   positive), values equal; evaluate_retrieval from the embeddings (the product included) beside.
2. 20,000 × 20,000 (d=512): one direction with every metric against the bare chunked matrix
   product plus top-k on the same data; peak RSS during the evaluation.
3. With --device cuda: the same comparison on the GPU at --size (default 100,000 × 100,000),
   ranking where the embeddings are; the target is ≤ 1.5× the bare chunked GEMM + top-10.

Run: python benchmarks/eval_speed.py [--repeats 3] [--json out.json] [--device cuda --size 100000]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from xmbench.eval.retrieval import evaluate_retrieval, evaluate_scores
from xmbench.profile.memory import PeakMemory


def timed(fn, repeats: int, device: str = "cpu") -> tuple[float, object]:
    """Median wall seconds over `repeats` calls after one warmup call, and the last result."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    result = fn()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def against_torchmetrics(repeats: int) -> dict:
    from torchmetrics.retrieval import RetrievalHitRate, RetrievalMAP

    g = torch.Generator().manual_seed(0)
    n, d, positives = 2000, 512, 5
    gallery = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    gallery_ids = torch.arange(n) // positives  # 400 items, 5 gallery rows each
    query_ids = torch.randint(0, n // positives, (n,), generator=g)
    queries = F.normalize(gallery[query_ids * positives] + 0.9 * torch.randn(n, d, generator=g), dim=-1)

    score_matrix = queries @ gallery.T + 1.0  # shift cosine ≥ 0 for torchmetrics; ranks are unchanged
    query_list, gallery_list = query_ids.tolist(), gallery_ids.tolist()
    ours_s, ours = timed(lambda: evaluate_scores(score_matrix, query_list, gallery_list), repeats)
    embeddings_s, _ = timed(lambda: evaluate_retrieval(queries, gallery, query_list, gallery_list), repeats)

    scores = score_matrix.flatten()  # torchmetrics wants one flat list with a query index per score
    target = (query_ids[:, None] == gallery_ids[None, :]).flatten()
    indexes = torch.arange(n).repeat_interleave(n)

    def torchmetrics_all():
        values = {"mAP": RetrievalMAP()(scores, target, indexes=indexes).item()}
        for k in (1, 5, 10):
            values[f"R@{k}"] = RetrievalHitRate(top_k=k)(scores, target, indexes=indexes).item()
        return values

    theirs_s, theirs = timed(torchmetrics_all, max(1, repeats // 3))
    differences = {k: abs(ours[k] - v) for k, v in theirs.items()}
    return {"size": f"{n}x{n}", "xmbench_s": ours_s, "torchmetrics_s": theirs_s, "speedup": theirs_s / ours_s,
            "xmbench_from_embeddings_s": embeddings_s, "speedup_from_embeddings": theirs_s / embeddings_s,
            "xmbench": {k: ours[k] for k in theirs}, "torchmetrics": theirs, "max_abs_difference": max(differences.values())}


def against_bare_matmul(repeats: int, n: int = 20000, d: int = 512, chunk: int = 1024, device: str = "cpu") -> dict:
    g = torch.Generator().manual_seed(1)
    gallery = F.normalize(torch.randn(n, d, generator=g), dim=-1).to(device)
    queries = F.normalize(gallery + 0.5 * torch.randn(n, d, generator=g).to(device), dim=-1)
    ids = torch.arange(n)

    def bare():
        for start in range(0, n, chunk):
            (queries[start:start + chunk] @ gallery.T).topk(10, dim=1)

    bare_s, _ = timed(bare, repeats, device)
    ours_s, _ = timed(lambda: evaluate_retrieval(queries, gallery, ids, ids, chunk_size=chunk), repeats, device)
    memory = PeakMemory(interval_s=0.005)
    with memory.track():
        metrics = evaluate_retrieval(queries, gallery, ids, ids, chunk_size=chunk)
    peak = memory.result()
    return {"size": f"{n}x{n}", "dim": d, "chunk": chunk, "device": device, "bare_matmul_topk_s": bare_s,
            "xmbench_s": ours_s, "ratio": ours_s / bare_s, "peak_rss_mb": peak["peak_rss_mb"],
            "rss_growth_mb": peak["rss_growth_mb"], "cuda_peak_mb": peak["cuda_peak_mb"], "R@1": metrics["R@1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--device", default="cpu", help="cuda: the large case on the GPU at --size")
    parser.add_argument("--size", type=int, default=100_000, help="queries = gallery rows on the GPU")
    args = parser.parse_args()
    if args.device != "cpu":
        result = against_bare_matmul(args.repeats, n=args.size, chunk=4096, device=args.device)
        print(f"{result['size']} d=512 on {args.device}: xmbench {result['xmbench_s']:.3f} s vs bare chunked GEMM + "
              f"top-10 {result['bare_matmul_topk_s']:.3f} s → {result['ratio']:.2f}× (target ≤ 1.5); "
              f"allocator peak {result['cuda_peak_mb']:.0f} MiB")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        return
    # the large case first: its peak RSS is then not inflated by torchmetrics' flat 4M-row inputs
    results = {"threads": torch.get_num_threads(), "large": against_bare_matmul(args.repeats)}
    results["torchmetrics"] = against_torchmetrics(args.repeats)
    tm, large = results["torchmetrics"], results["large"]
    print(f"2000x2000 from the same scores: xmbench {tm['xmbench_s'] * 1e3:.1f} ms, "
          f"torchmetrics {tm['torchmetrics_s'] * 1e3:.0f} ms "
          f"→ {tm['speedup']:.0f}× faster; max |difference| {tm['max_abs_difference']:.2e}")
    print(f"2000x2000 from the embeddings (score product included): xmbench {tm['xmbench_from_embeddings_s'] * 1e3:.1f} ms "
          f"→ {tm['speedup_from_embeddings']:.0f}×")
    print(f"20000x20000 d=512: xmbench {large['xmbench_s']:.2f} s vs bare matmul+top-k {large['bare_matmul_topk_s']:.2f} s "
          f"→ {large['ratio']:.2f}×; peak RSS {large['peak_rss_mb']:.0f} MiB (+{large['rss_growth_mb']:.0f} MiB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
