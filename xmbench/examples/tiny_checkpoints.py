"""Tiny random Hugging Face checkpoints of every supported tower family, saved with their processors.

For tests and the "Your own model" example: nothing may be downloaded here, so each family's
checkpoint is built from a small config and `save_pretrained` into a folder with the tokenizer,
image processor or feature extractor a real checkpoint ships. The text tokenizer is a word-level
one over the built-in captions' vocabulary (xmbench.data.synthetic), with BOS/EOS/PAD tokens.

    python -m xmbench.examples.tiny_checkpoints DIR [FAMILY ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[MASK]", "<s>", "</s>"]  # ids 0-4; EOS is not 2 (CLIP's legacy EOS rule)
PAD, BOS, EOS = 0, 3, 4
WIDTH = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
IMAGE_SIDE = 32
SAMPLE_RATE = 16000


def caption_words() -> list[str]:
    """Every word of the built-in set's captions (both domains), sorted."""
    from xmbench.data.synthetic import random_scene, write_captions

    rng = np.random.default_rng(0)
    words = set()
    for domain in ("source", "target"):
        for _ in range(400):
            for caption in write_captions(random_scene(rng, domain, 3), rng, domain):
                words.update(caption.lower().replace(",", " , ").replace(".", " . ").split())
    return sorted(words)


def tokenizer():
    """A fast word-level tokenizer over the captions' words: <s> caption </s>, lower-cased."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + caption_words())}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", BOS), ("</s>", EOS)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>",
                                   eos_token="</s>", mask_token="[MASK]", model_max_length=64)


def _text_ids(vocab_size: int) -> dict:
    return dict(vocab_size=vocab_size, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)


def _image_processor(kind: str):
    import transformers

    if kind == "clip":
        return transformers.CLIPImageProcessor(size={"shortest_edge": IMAGE_SIDE},
                                               crop_size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})
    if kind == "dinov2":
        return transformers.BitImageProcessor(size={"shortest_edge": IMAGE_SIDE},
                                              crop_size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})
    return transformers.ViTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE})


def _clap_extractor():
    import transformers

    # 16 kHz, 16 mel bins, 50 ms hop: clips up to 3 s (61 frames) fit the tiny HTS-AT's 64 frames uncropped
    return transformers.ClapFeatureExtractor(feature_size=16, sampling_rate=SAMPLE_RATE, hop_length=800,
                                             fft_window_size=1024, max_length_s=3, truncation="rand_trunc",
                                             padding="repeatpad")


def _clap_audio_config():
    import transformers

    return transformers.ClapAudioConfig(hidden_size=16, patch_embeds_hidden_size=8, depths=[1, 1], num_attention_heads=[2, 2],
                                        window_size=4, spec_size=32, num_mel_bins=16, patch_size=4, patch_stride=(4, 4),
                                        enable_fusion=False, projection_dim=16)


def build(family: str):
    """(model, processors to save beside it) of one family."""
    import transformers as T

    tok = tokenizer()
    text = dict(num_hidden_layers=2, max_position_embeddings=66, **WIDTH, **_text_ids(len(tok)))
    vision = dict(num_hidden_layers=2, image_size=IMAGE_SIDE, patch_size=8, **WIDTH)
    if family == "bert":
        return T.BertModel(T.BertConfig(**text)), [tok]
    if family == "roberta":
        return T.RobertaModel(T.RobertaConfig(**{**text, "max_position_embeddings": 68})), [tok]
    if family == "clip_text":
        return T.CLIPTextModel(T.CLIPTextConfig(**text)), [tok]
    if family == "clip_vision":
        return T.CLIPVisionModel(T.CLIPVisionConfig(**vision)), [_image_processor("clip")]
    if family == "vit":
        return T.ViTModel(T.ViTConfig(**vision)), [_image_processor("vit")]
    if family == "dinov2":
        config = T.Dinov2Config(image_size=IMAGE_SIDE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, mlp_ratio=2)
        return T.Dinov2Model(config), [_image_processor("dinov2")]
    if family == "ast":
        config = T.ASTConfig(num_hidden_layers=2, max_length=160, num_mel_bins=16, **WIDTH)
        return T.ASTModel(config), [T.ASTFeatureExtractor(num_mel_bins=16, max_length=160, sampling_rate=SAMPLE_RATE)]
    if family == "wav2vec2":
        # a total conv stride of 320 as the real one: 50 frames a second (a smaller one makes 1.5 s thousands of frames)
        config = T.Wav2Vec2Config(num_hidden_layers=2, conv_dim=(8, 8, 8), conv_kernel=(10, 8, 8), conv_stride=(5, 8, 8),
                                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, **WIDTH)
        return T.Wav2Vec2Model(config), [T.Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, return_attention_mask=True)]
    if family == "whisper":
        config = T.WhisperConfig(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                                 decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16,
                                 max_source_positions=100, max_target_positions=16, **_text_ids(len(tok)),
                                 decoder_start_token_id=BOS)
        return T.WhisperModel(config), [T.WhisperFeatureExtractor(feature_size=16, sampling_rate=SAMPLE_RATE, chunk_length=2)]
    if family == "clap_text":
        return T.ClapTextModel(T.ClapTextConfig(**{**text, "max_position_embeddings": 68})), [tok]
    if family == "clap_audio":
        return T.ClapAudioModel(_clap_audio_config()), [_clap_extractor()]
    if family == "clip":
        config = T.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        return T.CLIPModel(config), [tok, _image_processor("clip")]
    if family == "clap":
        config = T.ClapConfig(text_config={**text, "max_position_embeddings": 68},
                              audio_config=_clap_audio_config().to_dict(), projection_dim=16)
        return T.ClapModel(config), [tok, _clap_extractor()]
    raise KeyError(f"unknown family '{family}'; known: {', '.join(FAMILIES)}")


FAMILIES = ("bert", "roberta", "clip_text", "clip_vision", "vit", "dinov2", "ast", "wav2vec2", "whisper",
            "clap_text", "clap_audio", "clip", "clap")
MODALITY = {"bert": "text", "roberta": "text", "clip_text": "text", "clap_text": "text", "clip_vision": "image",
            "vit": "image", "dinov2": "image", "ast": "audio", "wav2vec2": "audio", "whisper": "audio",
            "clap_audio": "audio"}


def save(family: str, folder: str | Path, seed: int = 0) -> Path:
    """The family's tiny checkpoint and processors in `folder` (random weights from `seed`)."""
    import torch

    torch.manual_seed(seed)
    model, processors = build(family)
    folder = Path(folder)
    model.save_pretrained(folder)
    for processor in processors:
        processor.save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args(argv)
    for family in args.families:
        print(save(family, Path(args.folder) / family), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
