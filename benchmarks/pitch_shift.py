"""Pitch shift: torchaudio.functional.pitch_shift against xmbench's batched STFT-domain shift, same clips, same shift.

8 one-second clips at 16 kHz (tones of 220-587 Hz with three harmonics, as the built-in data's
colours, and one 440 Hz sine), shifted up `--semitones` (default 2) by both. Prints each one's
median wall time over `--repeats` calls (torchaudio: one call, it is slow), the speed ratio
(the target is ≥ 100×), both outputs' length (the duration is kept), and the dominant frequency
of the 440 Hz clip after each shift against 440 · 2^(semitones/12) (493.9 Hz for 2).

Run: python benchmarks/pitch_shift.py [--semitones 2] [--repeats 5] [--threads 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
import torchaudio

from xmbench.data.augment._pitch import dominant_frequency, pitch_shift

RATE = 16000
PITCHES = (220.0, 277.2, 329.6, 392.0, 493.9, 587.3, 261.6)


def clips() -> torch.Tensor:
    t = torch.arange(RATE) / RATE
    rows = [sum(a * torch.sin(2 * math.pi * (h + 1) * f * t) for h, a in enumerate((1.0, 0.5, 0.3))) / 1.8
            for f in PITCHES]
    rows.append(torch.sin(2 * math.pi * 440.0 * t))
    return torch.stack(rows).float()


def timed(fn, repeats: int) -> tuple[float, torch.Tensor]:
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--semitones", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = clips()
    pitch_shift(x, args.semitones)  # warm-up
    ours_s, ours = timed(lambda: pitch_shift(x, args.semitones), args.repeats)
    theirs_s, theirs = timed(lambda: torchaudio.functional.pitch_shift(x, RATE, args.semitones), 1)
    expected = 440.0 * 2 ** (args.semitones / 12)
    result = {
        "clips": list(x.shape), "semitones": args.semitones, "threads": args.threads,
        "torchaudio_s": theirs_s, "xmbench_s": ours_s, "speed_ratio": theirs_s / ours_s,
        "lengths": {"input": x.shape[-1], "torchaudio": theirs.shape[-1], "xmbench": ours.shape[-1]},
        "pitch_440_hz": {"expected": expected, "torchaudio": dominant_frequency(theirs[-1], RATE).item(),
                         "xmbench": dominant_frequency(ours[-1], RATE).item()},
    }
    print(f"{x.shape[0]} clips × {x.shape[1] / RATE:g} s at {RATE} Hz, +{args.semitones:g} semitones, {args.threads} thread(s)")
    print(f"torchaudio.functional.pitch_shift: {theirs_s:8.3f} s")
    print(f"xmbench _pitch.pitch_shift:        {ours_s:8.3f} s   (median of {args.repeats})")
    print(f"speed ratio: {result['speed_ratio']:.0f}×   (target ≥ 100×)")
    print(f"lengths: input {x.shape[-1]}, torchaudio {theirs.shape[-1]}, xmbench {ours.shape[-1]}")
    p = result["pitch_440_hz"]
    print(f"440 Hz clip after the shift: expected {expected:.2f} Hz, torchaudio {p['torchaudio']:.2f} Hz, "
          f"xmbench {p['xmbench']:.2f} Hz")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
