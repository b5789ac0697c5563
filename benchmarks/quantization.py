"""Post-training quantisation of the towers: encode latency per tower and retrieval before/after, in one process.

Arms, all built from one model: `fp32` (LoRA r=8 unmerged, its B matrices moved off their zero init
as after training), `merged` (the same with LoRA merged: what the int8 arms quantise, so the fair
baseline of their speed), and one arm per `--arms` entry, each the `quantize` transform on
`tower/*` with the options in ARMS (int8 per output channel, per layer, or per channel with the
FFN output layers kept fp32; bf16; fp16). The model is the reference model on its foundation weights when the
foundation cache exists (else `--tiny` towers, whose retrieval is near chance: only the
mechanics and the latency ratios mean something there). Arms are timed interleaved in rounds
(p50 of repeated calls of one tower's encode per batch size), the median over rounds reported, so
the machine's drift hits every arm alike. Retrieval: R@1 per direction and its mean on the test
split, and the mean and lowest per-row cosine of each arm's embeddings with the fp32 arm's.

Latency on a shared machine is only worth reading when it is quiet: the script prints the load
average before it starts.

Run: python benchmarks/quantization.py [--arms int8 int8_per_layer int8_keep_ffn_out bf16] [--rounds 5] [--batch-sizes 1 8]
     [--tiny] [--n-test 256] [--json out.json]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics

import torch
import torch.nn.functional as F

from xmbench.config import RunConfig, resolve
from xmbench.data.cache import cache_root
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import evaluate_model
from xmbench.models.reference import build_reference
from xmbench.profile.latency import time_callable
from xmbench.registry import TRANSFORMS, load_builtins
from xmbench.train.foundation import foundation_key

# arm → options of the quantize transform (components: tower/*)
ARMS = {
    "int8": {"method": "dynamic_int8"},
    "int8_per_layer": {"method": "dynamic_int8", "per_channel": False},
    # the FFN output layers (BERT: layer.N.output.dense; ViT/AST: layers.N.mlp.fc2) take the GELU's outlier-heavy output
    "int8_keep_ffn_out": {"method": "dynamic_int8", "exclude": ["*.layer.?.output.dense", "*.layers.?.mlp.fc2"]},
    "bf16": {"method": "bf16"},
    "fp16": {"method": "fp16"},
}
TINY = {"data": {"image_size": 32, "audio_seconds": 0.5, "n_mels": 32},
        "model": {"embed_dim": 16, "text": {"size": "tiny"}, "image": {"size": "tiny"}, "audio": {"size": "tiny"}},
        "foundation": {"enabled": False}}


def model_config(tiny: bool, n_test: int) -> tuple[RunConfig, dict | None, str]:
    """The config, the foundation weights (None: random tiny towers) and which model it is."""
    config = RunConfig()
    path = cache_root(config.foundation.cache_dir) / "foundation" / foundation_key(config) / "model.safetensors"
    if tiny or not path.exists():
        config = resolve(TINY)
        state, what = None, "tiny towers, random weights" + ("" if tiny else f" (no foundation cache at {path})")
    else:
        from safetensors.torch import load_file

        state, what = load_file(str(path)), f"reference model, foundation {path.parent.name}"
    return dataclasses.replace(config, data=dataclasses.replace(config.data, n_test=n_test)), state, what


def arms(config: RunConfig, modalities, state, chosen: list[str]) -> dict:
    torch.manual_seed(0)
    fp32 = build_reference(config, modalities, state).eval()
    with torch.no_grad():
        for name, p in fp32.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02, generator=torch.Generator().manual_seed(1))
    models = {"fp32": fp32, "merged": TRANSFORMS.bind(TRANSFORMS.default("merge"))(copy.deepcopy(fp32)).eval()}
    for arm in chosen:
        transform = TRANSFORMS.bind(TRANSFORMS.default("quantize", components=["tower/*"], **ARMS[arm]))
        models[arm] = transform(copy.deepcopy(fp32)).eval()
    return models


def retrieval(models: dict, split, directions: list[str]) -> dict:
    out, reference = {}, None
    for arm, model in models.items():
        metrics, _, embeddings = evaluate_model(model, split, directions)
        if reference is None:
            reference = embeddings
        out[arm] = {"R@1": {d: metrics[d]["R@1"] for d in directions},
                    "mean_R@1": statistics.mean(metrics[d]["R@1"] for d in directions),
                    "cosine_vs_fp32": {m: {"mean": float(F.cosine_similarity(e, reference[m]).mean()),
                                           "min": float(F.cosine_similarity(e, reference[m]).min())}
                                       for m, e in embeddings.items()}}
    return out


def latency(models: dict, split, batch_sizes: list[int], rounds: int) -> dict:
    inputs = {(m, b): split.rows(m, torch.arange(b)) for m in split.modalities for b in batch_sizes}
    samples: dict = {}
    for round_index in range(rounds):
        for arm, model in models.items():
            for (modality, batch), x in inputs.items():
                run = torch.inference_mode()(lambda m=model, mo=modality, x=x: m.encode(mo, x))
                p50 = time_callable(run, warmup=2, min_count=10, min_time_s=0.2).percentile(50)
                samples.setdefault(f"{modality}.b{batch}", {}).setdefault(arm, []).append(p50)
        print(f"round {round_index + 1}/{rounds} done", flush=True)
    return {key: {arm: statistics.median(values) for arm, values in by_arm.items()} for key, by_arm in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=["int8", "int8_per_layer", "int8_keep_ffn_out", "bf16"],
                        choices=list(ARMS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tiny", action="store_true", help="tiny random towers even when the foundation cache exists")
    parser.add_argument("--n-test", type=int, default=256, help="test items for the retrieval comparison")
    parser.add_argument("--json")
    args = parser.parse_args()
    load_builtins()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads")
    config, state, what = model_config(args.tiny, args.n_test)
    split = load_split(config.data, "test")
    models = arms(config, split.modalities, state, args.arms)
    print(f"model: {what}; test split: {len(split)} items")
    accuracy = retrieval(models, split, list(config.eval.directions))
    timed = latency(models, split, args.batch_sizes, args.rounds)

    names = list(models)
    print("\nencode latency, median over rounds of p50 (ms); ratio: merged / arm (>1: the arm is faster)")
    print(f"{'tower.batch':>12} " + " ".join(f"{a:>17}" for a in names))
    for key, by_arm in timed.items():
        cells = [f"{1e3 * by_arm[a]:.2f}" + ("" if a in ("fp32", "merged") else f" ×{by_arm['merged'] / by_arm[a]:.2f}")
                 for a in names]
        print(f"{key:>12} " + " ".join(f"{c:>17}" for c in cells))
    print("\nretrieval on the test split")
    directions = list(config.eval.directions)
    print(f"{'arm':>17} " + " ".join(f"{d:>7}" for d in directions) + f" {'mean R@1':>9}  cosine vs fp32 per row: mean/min")
    for arm, result in accuracy.items():
        cosines = ", ".join(f"{m} {c['mean']:.4f}/{c['min']:.4f}" for m, c in result["cosine_vs_fp32"].items())
        print(f"{arm:>17} " + " ".join(f"{result['R@1'][d]:>7.3f}" for d in directions)
              + f" {result['mean_R@1']:>9.4f}  {cosines}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": what, "rounds": args.rounds, "threads": torch.get_num_threads(),
                       "latency_s": timed, "retrieval": accuracy}, f, indent=2)


if __name__ == "__main__":
    main()
