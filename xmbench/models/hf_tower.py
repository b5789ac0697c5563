"""Towers from any local Hugging Face checkpoint folder: `model.image = { arch = "hf", path = "/models/my-vit" }`.

The folder's config.json names the family (`model_type`); the family says which model class
holds the modality's encoder and how its token states are pooled by default:

    family (model_type)                      modality      encoder                pooling
    bert, roberta, xlm-roberta               text          AutoModel              mean (sentence-transformers)
    clip / clip_text_model                   text          CLIPTextModel          pooler (the EOS token)
    clip / clip_vision_model                 image         CLIPVisionModel        pooler (CLS, post-LayerNorm)
    vit, dinov2                              image         AutoModel              cls
    audio-spectrogram-transformer            audio         AutoModel (AST)        pooler (CLS + distillation)
    wav2vec2, hubert, wavlm                  audio         AutoModel              mean (in frames)
    whisper                                  audio         WhisperModel.encoder   mean (in frames)
    clap / clap_text_model                   text          ClapTextModel          pooler
    clap / clap_audio_model                  audio         ClapAudioModel         pooler

Any other family loads with AutoModel and mean pooling. `pooling` overrides the default:
cls (the first token), mean (over real tokens, padding masked in the backbone's own frame rate),
pooler (the model's `pooler_output`), last (the last real token). Nothing is downloaded: the
folder is read with `local_files_only`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xmbench.errors import ConfigError
from xmbench.registry import TOWERS

if TYPE_CHECKING:
    from xmbench.config import DataConfig, TowerConfig
    from xmbench.models.reference import Tower


@dataclass(frozen=True)
class Family:
    """How one family's checkpoint gives a modality's encoder."""

    # "auto", "whisper" (its encoder), a transformers class to load, or "Class.attribute": a dual
    # encoder loaded whole and one tower taken out (where the tower class's names do not match the whole's)
    loader: str
    pooling: str


TEXT_FAMILIES = ("bert", "roberta", "xlm-roberta")
FAMILIES: dict[tuple[str, str], Family] = {
    **{(f, "text"): Family("auto", "mean") for f in TEXT_FAMILIES},
    ("clip", "text"): Family("CLIPTextModel", "pooler"),
    ("clip_text_model", "text"): Family("CLIPTextModel", "pooler"),
    ("clip", "image"): Family("CLIPVisionModel", "pooler"),
    ("clip_vision_model", "image"): Family("CLIPVisionModel", "pooler"),
    ("vit", "image"): Family("auto", "cls"),
    ("dinov2", "image"): Family("auto", "cls"),
    ("audio-spectrogram-transformer", "audio"): Family("auto", "pooler"),
    ("wav2vec2", "audio"): Family("auto", "mean"),
    ("hubert", "audio"): Family("auto", "mean"),
    ("wavlm", "audio"): Family("auto", "mean"),
    ("whisper", "audio"): Family("whisper", "mean"),
    ("clap", "text"): Family("ClapModel.text_model", "pooler"),
    ("clap_text_model", "text"): Family("ClapTextModel", "pooler"),
    ("clap", "audio"): Family("ClapModel.audio_model", "pooler"),
    ("clap_audio_model", "audio"): Family("ClapAudioModel", "pooler"),
}
DUAL_ENCODERS = ("clip", "clap")


def model_type(path: str | Path) -> str:
    """The checkpoint's `model_type`, or a ConfigError naming the folder."""
    config = Path(path) / "config.json"
    try:
        return json.loads(config.read_text())["model_type"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"arch = \"hf\": {config} is not a readable Hugging Face config with a model_type "
                          f"({type(exc).__name__}: {exc})") from None


def family(path: str | Path, modality: str) -> Family:
    kind = model_type(path)
    if kind in DUAL_ENCODERS and (kind, modality) not in FAMILIES:
        raise ConfigError(f"arch = \"hf\": {path} is a {kind} checkpoint, which has no {modality} tower")
    return FAMILIES.get((kind, modality), Family("auto", "mean"))


def load_backbone(path: str, modality: str):
    """The modality's encoder of the checkpoint (its weights, offline) and its default pooling.

    Every weight of the encoder must come from the checkpoint: a tower left partly random by a
    name mismatch would be measured as if pretrained, so missing weights are an error.
    """
    import transformers

    found = family(path, modality)
    name, _, attribute = found.loader.partition(".")
    cls = {"auto": transformers.AutoModel, "whisper": transformers.WhisperModel}.get(name) or getattr(transformers, name)
    model, info = cls.from_pretrained(path, local_files_only=True, output_loading_info=True)
    backbone = model.get_encoder() if name == "whisper" else getattr(model, attribute) if attribute else model
    prefix = "encoder." if name == "whisper" else f"{attribute}." if attribute else ""  # the tower's own weights
    missing = [k for k in info.get("missing_keys", []) if k.startswith(prefix)]
    if missing:
        raise ConfigError(f"arch = \"hf\": {path} lacks {len(missing)} weights of its {modality} tower "
                          f"({cls.__name__}), e.g. {', '.join(sorted(missing)[:3])}: the tower would start partly random")
    return backbone, found.pooling


def hidden_size(backbone) -> int:
    """The width of the backbone's token states (config.hidden_size, d_model, or the last stage's for Swin-like)."""
    config = backbone.config
    if hasattr(config, "patch_embeds_hidden_size") and hasattr(config, "depths"):  # CLAP's HTS-AT: doubles per stage
        return config.patch_embeds_hidden_size * 2 ** (len(config.depths) - 1)
    for key in ("hidden_size", "d_model"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    raise ConfigError(f"arch = \"hf\": cannot tell the hidden size of {type(backbone).__name__} from its config")


@TOWERS.register("hf")
def hf(tower: TowerConfig, data: DataConfig, modality: str, options=None) -> Tower:
    """Any local Hugging Face checkpoint (model.<m>.path), pooled per family or as model.<m>.pooling says."""
    from xmbench.models.reference import Tower

    backbone, pooling = load_backbone(tower.path, modality)
    return Tower(modality, backbone, hidden_size(backbone), pooling if tower.pooling == "auto" else tower.pooling)
