"""Word dropout on the tokenised captions of a training batch (EDA's "random deletion", at the token level).

Each word of a caption (a WordPiece token and the "##" pieces that continue it; with
`unit = "token"` each piece alone) is dropped with probability `p`; [CLS], [SEP] and padding never
are. The remaining tokens move left, the attention mask follows them, and the batch is trimmed to
its new longest row, so the text tower sees a shorter caption, not holes. A caption that would
lose every word keeps them all (an empty caption is no positive of anything). One uniform draw per
token position of the batch, from the run's generator, whatever p is. Written here on the token
ids (a dozen tensor operations, no decoding): nlpaug and textattack work on strings and draw from
Python's global RNG.

On the built-in data a dropped word can be a label (a colour, a shape): the caption then says
less, but nothing false; "to the left of" may lose "left", which leaves the order unsaid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from xmbench.registry import AUGMENTATIONS
from xmbench.schema import PROBABILITY


@dataclass(frozen=True)
class WordDropoutOptions:
    """Attributes:
    p: probability that each word (or token) of a caption is dropped.
    unit: word (a token with its ## continuation pieces) or token (each WordPiece token alone).
    """

    p: Annotated[float, PROBABILITY] = 0.1
    unit: Literal["word", "token"] = "word"


class WordDropout:
    def __init__(self, split, options: WordDropoutOptions):
        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        _shared.require(split, "text", "word_dropout")
        tokenizer = _shared.preprocessor(_shared.data_config(split, "word_dropout")).tokenizer
        self.p, self.unit, self.pad = options.p, options.unit, tokenizer.pad_token_id
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.continues = torch.tensor([token.startswith("##") for token in vocab])  # by token id

    def drop(self, ids, mask, uniform):
        """(rows, width) bool: the tokens to drop, given one uniform value per position."""
        from xmbench.lazy import torch

        content = mask.bool() & ~torch.isin(ids, self.special)
        if self.unit == "token":
            drop = content & (uniform < self.p)
        else:
            start = content & ~self.continues[ids.clamp(0, len(self.continues) - 1)]
            positions = torch.arange(ids.shape[1]).expand_as(ids)
            word_start = torch.where(start, positions, torch.zeros_like(positions)).cummax(1).values
            drop = content & (uniform.gather(1, word_start) < self.p)  # a piece goes with its word's first token
        lost_all = (content & ~drop).sum(1) == 0
        return drop & ~lost_all[:, None]

    def __call__(self, batch, generator):
        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        inputs = batch.inputs["text"]
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        uniform = torch.rand(ids.shape, generator=generator)
        drop = self.drop(ids.cpu(), mask.cpu(), uniform)
        if not bool(drop.any()):
            return batch
        keep = mask.cpu().bool() & ~drop
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept tokens first, in order
        new_keep = keep.gather(1, order)
        width = int(new_keep.sum(1).max())
        new_ids = torch.where(new_keep, ids.cpu().gather(1, order), torch.full_like(ids.cpu(), self.pad))[:, :width]
        text = {**inputs, "input_ids": new_ids.to(ids.device),
                "attention_mask": new_keep[:, :width].to(device=mask.device, dtype=mask.dtype)}
        return _shared.derive(batch, {"text": text})


@AUGMENTATIONS.register("word_dropout", WordDropoutOptions)
def word_dropout(split, options: WordDropoutOptions):
    """Drops words (or WordPiece tokens) of captions with a probability; [CLS]/[SEP] stay, masks follow."""
    return WordDropout(split, options)
