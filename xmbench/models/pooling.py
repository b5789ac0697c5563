"""Pooling: a backbone's token states (one row of tokens or frames per input) into one vector per row.

    cls     the first token's state (ViT's and DINOv2's class token)
    mean    the mean over the real tokens: padding is masked in the backbone's own frame rate
    pooler  the backbone's own `pooler_output` (CLIP's EOS/CLS, AST's CLS + distillation, CLAP's)
    last    the last real token's state (decoder-style text encoders)

The attention mask comes per input position; an audio backbone's states come per frame (a
wav2vec2 mask is per sample, its states one per 20 ms; Whisper's mask per mel frame, its states one
per two). The real frames of each row are then the backbone's own output lengths
(`_get_feat_extract_output_lengths`, which wav2vec2-style models define), or the real share of the
positions scaled to the number of states.
"""
from __future__ import annotations

import torch

POOLINGS = ("cls", "mean", "pooler", "last")


def state_mask(mask: torch.Tensor | None, states: torch.Tensor, backbone) -> torch.Tensor | None:
    """(B, S) mask of the real states, from a (B, P) mask of the real input positions (None: all real)."""
    if mask is None or mask.shape[1] == states.shape[1]:
        return mask
    lengths = mask.sum(dim=1)
    output_lengths = getattr(backbone, "_get_feat_extract_output_lengths", None)
    if output_lengths is not None:
        frames = output_lengths(lengths)
    else:
        frames = torch.ceil(lengths * states.shape[1] / mask.shape[1])
    return torch.arange(states.shape[1], device=states.device)[None, :] < frames.to(states.device)[:, None]


def pool(kind: str, output, mask: torch.Tensor | None, backbone) -> torch.Tensor:
    """(B, H) from a backbone's output: a ModelOutput with last_hidden_state (maybe pooler_output), or
    a code tower's tensor of (B, T, H) states or (B, H) vectors (already pooled)."""
    if isinstance(output, torch.Tensor) and output.dim() == 2:
        return output
    if kind == "pooler":
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            raise ValueError(f"pooling = 'pooler': {type(backbone).__name__} returns no pooler_output; "
                             f"use cls, mean or last")
        return pooled.flatten(1)
    states = output if isinstance(output, torch.Tensor) else output.last_hidden_state
    if kind == "cls":
        return states[:, 0]
    mask = state_mask(mask, states, backbone)
    if kind == "last":
        if mask is None:
            return states[:, -1]
        last = (mask.long().sum(dim=1) - 1).clamp(min=0)
        return states[torch.arange(len(states), device=states.device), last]
    if mask is None:
        return states.mean(dim=1)
    mask = mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
