"""Every augmentation in one pipeline of a short training run: finite losses, the same seed the same run."""
import torch

from xmbench.config import resolve
from xmbench.data.sources import load_split
from xmbench.models.reference import build_reference
from xmbench.train.engine import train

PAIRS = [("text", "image"), ("text", "audio"), ("image", "audio")]
PIPELINE = [
    {"name": "synonyms", "p": 0.3}, {"name": "word_dropout", "p": 0.1},
    {"name": "gain"}, {"name": "noise"}, {"name": "time_shift"}, {"name": "pitch_shift"},
    {"name": "cross_modal_shift"}, {"name": "mix_negatives", "share": 0.25},
    {"name": "spec_augment"}, {"name": "color_jitter"}, {"name": "random_resized_crop"},
]


def run(config, seed=0):
    torch.manual_seed(seed)
    model = build_reference(config, ("text", "image", "audio"))
    return train(model, load_split(config.data, "train"), config.train, seed=seed, pairs=PAIRS, progress=False)


def test_a_run_with_every_augmentation_trains_and_is_reproducible(tiny_base):
    config = resolve(tiny_base, {"train.augment": PIPELINE, "train.loss": "supcon", "train.steps": 3,
                                 "train.eval_every": 0})
    first, second = run(config), run(config)
    losses = [s.loss for s in first.steps]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert losses == [s.loss for s in second.steps]


def test_mixup_trains_with_the_row_aligned_augmentations(tiny_base):
    aligned = [a for a in PIPELINE if a["name"] != "mix_negatives"]
    config = resolve(tiny_base, {"train.augment": aligned, "train.loss": {"name": "mixup", "alpha": 0.4},
                                 "train.steps": 2, "train.eval_every": 0})
    result = run(config)
    assert all(torch.isfinite(torch.tensor([s.loss for s in result.steps])))
    assert result.steps[0].pair_losses.keys() == {"text-image", "text-audio", "image-audio"}
