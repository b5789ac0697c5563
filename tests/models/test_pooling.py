"""Pooling of token states into one vector per row: the mask in the backbone's own frame rate, each kind by hand."""
from types import SimpleNamespace

import pytest
import torch

from xmbench.models.pooling import pool, state_mask


class Strided(torch.nn.Module):
    """A backbone whose states come one per 4 input positions, with wav2vec2's output-lengths method."""

    @staticmethod
    def _get_feat_extract_output_lengths(lengths):
        return lengths // 4


def test_the_mask_follows_the_backbones_output_lengths_else_the_real_share_of_positions():
    states = torch.zeros(2, 5, 3)
    mask = torch.tensor([[1] * 20, [1] * 9 + [0] * 11])
    assert state_mask(None, states, torch.nn.Identity()) is None
    same = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert state_mask(same, states, torch.nn.Identity()) is same  # one mask entry per state: as it is
    assert state_mask(mask, states, Strided()).tolist() == [[True] * 5, [True, True, False, False, False]]  # 9 // 4
    # no such method: the real share of the positions, rounded up (9 of 20 positions → 2.25 → 3 of 5 states)
    assert state_mask(mask, states, torch.nn.Identity()).tolist() == [[True] * 5, [True, True, True, False, False]]


def test_each_kind_by_hand():
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(2, 4, 3, generator=generator)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    output = SimpleNamespace(last_hidden_state=states, pooler_output=torch.randn(2, 3, generator=generator))
    backbone = torch.nn.Identity()
    torch.testing.assert_close(pool("cls", output, mask, backbone), states[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(pool("last", output, mask, backbone), torch.stack([states[0, 1], states[1, 3]]),
                               rtol=0, atol=0)
    torch.testing.assert_close(pool("mean", output, mask, backbone), torch.stack([states[0, :2].mean(0), states[1].mean(0)]))
    torch.testing.assert_close(pool("pooler", output, mask, backbone), output.pooler_output, rtol=0, atol=0)
    torch.testing.assert_close(pool("mean", output, None, backbone), states.mean(1))
    torch.testing.assert_close(pool("last", output, None, backbone), states[:, -1], rtol=0, atol=0)


def test_a_code_towers_tensors_pool_too_and_pooled_vectors_pass_through():
    states = torch.randn(2, 4, 3)
    torch.testing.assert_close(pool("mean", states, None, torch.nn.Identity()), states.mean(1))
    vectors = torch.randn(2, 3)
    assert pool("cls", vectors, None, torch.nn.Identity()) is vectors


def test_pooler_without_a_pooler_output_names_the_alternatives():
    output = SimpleNamespace(last_hidden_state=torch.zeros(1, 2, 3), pooler_output=None)
    with pytest.raises(ValueError, match="returns no pooler_output; use cls, mean or last"):
        pool("pooler", output, None, torch.nn.Identity())
