"""Engine overhead against a minimal hand-written loop, with and without per-step probes.

All three arms run in this one process on the same reference model (foundation weights, LoRA
r=8 on every tower), the same batches (same sampler and seed) and the same optimizer
(AdamW, clipping), interleaved in rounds so the machine's drift hits each arm alike:
  minimal — the loop a user would write: batch, encode, InfoNCE, backward, clip, step;
  engine  — xmbench.train.engine.train with no probes;
  probes  — the engine with the per-step probes (gradient norms and the memory tracer).
Prints each arm's median seconds per step and the ratios to the minimal loop.

Run: python benchmarks/probe_overhead.py [--rounds 12] [--steps 4] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from xmbench.config import RunConfig
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.profile.dynamics import GradNormProbe
from xmbench.profile.memory_trace import MemoryProbe
from xmbench.registry import load_builtins
from xmbench.train.engine import train
from xmbench.train.foundation import foundation_state
from xmbench.train.samplers.epoch import EpochSampler


def minimal_loop(model, split, cfg, seed: int, pairs) -> None:
    """A plain PyTorch loop, nothing but the work: the baseline the engine is judged against."""
    modalities = sorted({m for p in pairs for m in p})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler, captions = EpochSampler(len(split), cfg.batch_size, seed), torch.Generator().manual_seed(seed + 1)
    model.train()
    for _ in range(cfg.steps):
        items = sampler.next()
        rows = {m: split.sample_captions(items, captions) if m == "text" else items for m in modalities}
        embeddings = {m: model.encode(m, split.rows(m, rows[m])) for m in modalities}
        scale, losses = model.temperature.log_scale.exp(), []
        for a, b in pairs:  # symmetric InfoNCE, written out
            logits = scale * embeddings[a] @ embeddings[b].T
            target = torch.arange(len(logits))
            losses.append((F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2)
        loss = torch.stack(losses).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        model.after_optimizer_step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=4, help="steps per arm per round")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    load_builtins()
    config = RunConfig()
    split = load_split(config.data, "train")
    state, _ = foundation_state(config, progress=True)
    torch.manual_seed(0)
    model = build_reference(config, split.modalities, state)
    pairs = config.train.modality_pairs()
    cfg = replace(config.train, steps=args.steps, eval_every=0, warmup_steps=0)

    arms = {
        "minimal": lambda seed: minimal_loop(model, split, cfg, seed, pairs),
        "engine": lambda seed: train(model, split, cfg, seed=seed, pairs=pairs, progress=False),
        "probes": lambda seed: train(model, split, cfg, seed=seed, pairs=pairs, progress=False,
                                     callbacks=[GradNormProbe(), MemoryProbe()]),
    }
    for name in arms:  # warm up every arm once: allocator, kernels, first optimizer state
        arms[name](99)
    per_step = {name: [] for name in arms}
    for round_index in range(args.rounds):
        names = list(arms)
        order = names[round_index % 3:] + names[:round_index % 3]  # each arm leads as often as the others
        for name in order:
            started = time.perf_counter()
            arms[name](round_index)  # the same batches for every arm of a round
            per_step[name].append((time.perf_counter() - started) / args.steps)
        print(f"round {round_index + 1}: " + ", ".join(f"{n} {per_step[n][-1]:.3f} s/step" for n in arms), flush=True)
    # paired: each round's arms saw the same batches within seconds of each other, so the
    # round's ratio cancels the machine's slow drift; the median over rounds resists bursts
    engine_ratio = [e / m for e, m in zip(per_step["engine"], per_step["minimal"])]
    probes_ratio = [p / e for p, e in zip(per_step["probes"], per_step["engine"])]
    median = {name: statistics.median(values) for name, values in per_step.items()}
    quartiles = lambda xs: [float(q) for q in statistics.quantiles(xs, n=4)]
    results = {"steps_per_round": args.steps, "rounds": args.rounds, "threads": torch.get_num_threads(),
               "seconds_per_step": per_step, "median_s_per_step": median,
               "engine_over_minimal": statistics.median(engine_ratio), "engine_over_minimal_quartiles": quartiles(engine_ratio),
               "probes_over_engine": statistics.median(probes_ratio), "probes_over_engine_quartiles": quartiles(probes_ratio)}
    print(f"median s/step: minimal {median['minimal']:.4f}, engine {median['engine']:.4f}, with probes {median['probes']:.4f}")
    print(f"engine / minimal = {results['engine_over_minimal']:.3f} (median of {args.rounds} paired rounds; quartiles "
          f"{results['engine_over_minimal_quartiles'][0]:.3f}–{results['engine_over_minimal_quartiles'][2]:.3f}; target ≤ 1.03)")
    print(f"probes / engine = {results['probes_over_engine']:.3f} (quartiles {results['probes_over_engine_quartiles'][0]:.3f}–"
          f"{results['probes_over_engine_quartiles'][2]:.3f}; target ≤ 1.05)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
