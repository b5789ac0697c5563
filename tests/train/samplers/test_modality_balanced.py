"""Batches balanced across availability patterns: exact shares, turns for remainders, small patterns."""
import numpy as np
import torch

from xmbench.registry import SAMPLERS
from xmbench.train.samplers.modality_balanced import ModalityBalancedSampler


class Split:
    """What a sampler reads of a split: its length and which items have which modality."""

    def __init__(self, present):
        self.present = {m: torch.as_tensor(p) for m, p in present.items()} if present else None
        self.n = len(next(iter(present.values()))) if present else 6

    def __len__(self):
        return self.n


def ragged(complete=40, text_audio=20, text_image=30):
    n = complete + text_audio + text_image
    image = [True] * complete + [False] * text_audio + [True] * text_image
    audio = [True] * complete + [True] * text_audio + [False] * text_image
    return Split({"text": [True] * n, "image": image, "audio": audio})


def sampler(split, batch_size, seed=0, **options):
    return SAMPLERS.bind(SAMPLERS.default("modality_balanced", **options))(split, batch_size, seed)


def pattern_of(split, row):
    return "+".join(m for m in ("text", "image", "audio") if bool(split.present[m][row]))


def test_every_pattern_alike_remainders_taking_turns():
    split = ragged()
    balanced = sampler(split, 32)
    compositions = []
    for _ in range(3):
        rows = balanced.next()
        assert len(set(rows.tolist())) == 32  # never an item twice in a batch
        counted = {name: sum(pattern_of(split, r) == name for r in rows.tolist()) for name in balanced.last}
        assert counted == balanced.last
        compositions.append([balanced.last[n] for n in ("text+audio", "text+image", "text+image+audio")])
    assert compositions == [[11, 11, 10], [10, 11, 11], [11, 10, 11]]  # 32 = 3 × 10.67: each pattern 32 in 3 batches


def test_alpha_one_mirrors_the_data():
    balanced = sampler(ragged(), 32, alpha=1.0)
    balanced.next()
    assert balanced.last == {"text+audio": 7, "text+image": 11, "text+image+audio": 14}  # 7.11, 10.67, 14.22


def test_a_pattern_with_too_few_items_gives_them_all():
    split = ragged(complete=10, text_audio=2, text_image=10)
    balanced = sampler(split, 12)
    for _ in range(4):
        rows = balanced.next()
        assert len(rows) == 12 and len(set(rows.tolist())) == 12
        assert balanced.last["text+audio"] == 2 and sum(balanced.last.values()) == 12


def test_complete_data_is_one_pattern_in_shuffled_epochs():
    balanced = sampler(Split(None), 3)
    seen = torch.cat([balanced.next(), balanced.next()]).tolist()
    assert sorted(seen) == list(range(6)) and balanced.last == {"text+image+audio": 3}


def test_resumes_where_it_stopped():
    split = ragged()
    first = sampler(split, 16, seed=3)
    for _ in range(3):
        first.next()
    state = first.state_dict()
    expected = [first.next().tolist() for _ in range(4)]
    resumed = sampler(split, 16, seed=99)
    resumed.load_state_dict(state)
    assert [resumed.next().tolist() for _ in range(4)] == expected


def test_shares_follow_the_counts_to_the_power_alpha():
    balanced = ModalityBalancedSampler(np.array([0] * 90 + [1] * 10), ["many", "few"], 10, 0,
                                       SAMPLERS.default("modality_balanced", alpha=0.5).options)
    assert np.allclose(balanced.shares, [3 / 4, 1 / 4])  # sqrt(90) : sqrt(10) = 3 : 1
