"""Merged LoRA against unmerged LoRA and the bare base model: encode latency per tower, and the embeddings.

All three arms in one process on the reference model (foundation weights): the bare base model
(no adapter), LoRA r=8 on query and value with its B matrices moved off their zero init (as after
training), and the same LoRA merged into the base weights by the `merge` transform. The arms run
interleaved in rounds, each round timing every arm's encoder of every tower at each batch size
(p50 of repeated calls), so the machine's drift hits every arm alike; the median over rounds is
reported. Merged LoRA is the base model's computation with other weight values: its latency should
equal the base model's. The merged embeddings are compared with the unmerged per row (cosine).

Run: python benchmarks/merge_latency.py [--rounds 7] [--batch-sizes 1 8] [--json out.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics

import torch
import torch.nn.functional as F

from xmbench.config import RunConfig
from xmbench.data.sources import load_split
from xmbench.eval.retrieval import encode_split
from xmbench.models.reference import build_reference
from xmbench.profile.latency import time_callable
from xmbench.registry import TRANSFORMS, load_builtins
from xmbench.train.foundation import foundation_state


def arms(config: RunConfig, modalities) -> dict:
    state, _ = foundation_state(config, progress=True)
    torch.manual_seed(0)
    base = build_reference(config, modalities, state, adapters=dict.fromkeys(modalities, "frozen")).eval()
    torch.manual_seed(0)
    lora = build_reference(config, modalities, state).eval()
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    merged = TRANSFORMS.bind(TRANSFORMS.default("merge"))(copy.deepcopy(lora)).eval()
    return {"base": base, "lora": lora, "merged": merged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--json")
    args = parser.parse_args()
    load_builtins()
    config = RunConfig()
    split = load_split(config.data, "test")
    models = arms(config, split.modalities)
    deviation = {m: float(1 - F.cosine_similarity(encode_split(models["merged"], split, m),
                                                  encode_split(models["lora"], split, m)).min())
                 for m in split.modalities}
    inputs = {(m, b): split.rows(m, torch.arange(b)) for m in split.modalities for b in args.batch_sizes}
    samples: dict = {}
    for round_index in range(args.rounds):
        for arm, model in models.items():
            for (modality, batch), x in inputs.items():
                run = torch.inference_mode()(lambda m=model, mo=modality, x=x: m.encode(mo, x))
                p50 = time_callable(run, warmup=2, min_count=10, min_time_s=0.2).percentile(50)
                samples.setdefault(f"{modality}.b{batch}", {}).setdefault(arm, []).append(p50)
        print(f"round {round_index + 1}/{args.rounds} done", flush=True)
    table = {}
    for key, by_arm in samples.items():
        median = {arm: statistics.median(values) for arm, values in by_arm.items()}
        table[key] = {**{f"{arm}_ms": 1e3 * v for arm, v in median.items()},
                      "merged_over_base": median["merged"] / median["base"],
                      "lora_over_base": median["lora"] / median["base"]}
        print(f"{key:>10}: base {1e3 * median['base']:.2f} ms, LoRA {1e3 * median['lora']:.2f} ms "
              f"(×{table[key]['lora_over_base']:.3f}), merged {1e3 * median['merged']:.2f} ms "
              f"(×{table[key]['merged_over_base']:.3f})")
    print("max cosine deviation merged vs unmerged per row: " + ", ".join(f"{m} {d:.2e}" for m, d in deviation.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "threads": torch.get_num_threads(), "latency": table,
                       "max_cosine_deviation": deviation}, f, indent=2)


if __name__ == "__main__":
    main()
