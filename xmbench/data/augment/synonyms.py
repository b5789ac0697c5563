"""Synonym replacement in the captions of a training batch (EDA's "SR", Wei & Zou 2019), re-tokenised.

Each caption row of the batch is decoded back to words (the tokenizer is uncased WordPiece: the
decoded text re-tokenises to the same tokens), scanned left to right for phrases of the table
(longest match first; a phrase is one or more words), and each phrase found is replaced, with
probability `p`, by one of its synonyms drawn uniformly. Changed rows are tokenised again like
`Preprocessor.encode_text` (truncated at data.max_text_tokens); unchanged rows keep their tokens;
the batch is padded to its new longest row. Two draws per phrase found, from the run's generator.

The built-in table covers the built-in data's vocabulary (xmbench.data.synthetic): the size and
shape words of both domains (SOURCE_WORDS, TARGET_WORDS: small/tiny/little, circle/disc/round
dot, …), the colours, and the templates' connective words. Words of a group are synonyms of each
other. Left and right are never exchanged: "to the left of" becomes "left of" or "on the left of",
never anything on the right, so the order a caption names survives. `table` adds a JSON file
{"phrase": ["synonym", …]} (directed: a phrase maps to its list; an entry replaces the built-in
one of the same phrase); `builtin = false` uses that file alone. Not a library (nlpaug, textattack):
they draw from Python's global RNG, look synonyms up in WordNet (off-vocabulary and offline-hostile
here), and would not know which words of the built-in data carry its labels.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from xmbench.errors import ConfigError
from xmbench.registry import AUGMENTATIONS
from xmbench.schema import Range

# Groups of interchangeable phrases: every member maps to the others.
BUILTIN_GROUPS = (
    # sizes (synthetic SOURCE_WORDS / TARGET_WORDS)
    ("small", "tiny", "little"), ("large", "big", "huge"),
    # shapes (TARGET_WORDS; "triangle" has none there)
    ("circle", "disc", "round dot"), ("square", "box"), ("diamond", "rhombus"), ("cross", "plus sign"),
    # colours
    ("red", "crimson", "scarlet"), ("green", "emerald"), ("blue", "azure"), ("yellow", "golden"),
    ("purple", "violet"), ("orange", "tangerine"),
    # the templates' connectives (SOURCE_TEMPLATES, SOURCE_SINGLE, TARGET_TEMPLATES, TARGET_SINGLE)
    ("from left to right", "left to right", "going from left to right"),
    ("then", "and then", "followed by"),
    ("there is", "there's", "we have"),
    ("an image with", "a picture with", "a photo with"),
    ("a picture of", "an image of", "a photo of"),
    ("to the left of", "left of", "on the left of"),
    ("to the right of", "right of", "on the right of"),
    ("on the left", "at the left", "on the left side"),
    ("on the right", "at the right", "on the right side"),
    ("in the middle", "in the centre", "in the center"),
    ("we see", "we can see", "i see"),
    ("next to", "beside", "alongside"),
    ("shapes", "objects", "items"),
    ("just", "only"),
    ("a lone", "a single"),
    ("by itself", "alone", "on its own"),
)

WORD = re.compile(r"\w+|[^\w\s]")  # the split the uncased WordPiece tokenizer makes before word pieces


def words(text: str) -> tuple[str, ...]:
    return tuple(WORD.findall(text.lower()))


def builtin_table() -> dict[tuple[str, ...], list[tuple[str, ...]]]:
    table = {}
    for group in BUILTIN_GROUPS:
        for phrase in group:
            table[words(phrase)] = [words(other) for other in group if other != phrase]
    return table


def read_table(path: str) -> dict[tuple[str, ...], list[tuple[str, ...]]]:
    """A user table: a JSON object {phrase: [synonym, …]}; a ConfigError naming the file when it is not."""
    where = f"train.augment: synonyms table {path}"
    try:
        data = json.loads(Path(path).expanduser().read_text())
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object {{phrase: [synonym, ...]}}, got {type(data).__name__}")
    table = {}
    for phrase, synonyms in data.items():
        if (not isinstance(synonyms, list) or not synonyms
                or not all(isinstance(s, str) and words(s) for s in synonyms) or not words(phrase)):
            raise ConfigError(f"{where}: '{phrase}' must map to a non-empty list of non-empty strings, got {synonyms!r}")
        table[words(phrase)] = [words(s) for s in synonyms]
    return table


def replace_synonyms(tokens: tuple[str, ...], table, longest: int, p: float, generator) -> tuple[tuple[str, ...], bool]:
    """The words with table phrases replaced (each with probability p), and whether any was."""
    import torch

    out, changed, i = [], False, 0
    while i < len(tokens):
        for span in range(min(longest, len(tokens) - i), 0, -1):
            phrase = tokens[i:i + span]
            if phrase in table:
                draw = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
                options = table[phrase]
                if draw[0] < p:
                    out.extend(options[min(int(draw[1] * len(options)), len(options) - 1)])
                    changed = True
                else:
                    out.extend(phrase)
                i += span
                break
        else:
            out.append(tokens[i])
            i += 1
    return tuple(out), changed


@dataclass(frozen=True)
class SynonymOptions:
    """Attributes:
    p: probability that each phrase of the table found in a caption is replaced.
    table: path to a JSON file {"phrase": ["synonym", ...]} of further (or, without builtin, all) synonyms.
    builtin: use the built-in table of the built-in data's words (sizes, shapes, colours, connectives).
    """

    p: Annotated[float, Range(0, 1)] = 0.3
    table: str = ""
    builtin: bool = True


class Synonyms:
    def __init__(self, split, options: SynonymOptions):
        from xmbench.data.augment import _shared

        _shared.require(split, "text", "synonyms")
        self.cfg = _shared.data_config(split, "synonyms")
        self.p = options.p
        self.table = builtin_table() if options.builtin else {}
        if options.table:
            self.table.update(read_table(options.table))
        if not self.table:
            raise ConfigError("train.augment: synonyms has no table: set table = a JSON file, or builtin = true")
        self.longest = max(len(phrase) for phrase in self.table)
        self.tokenizer = _shared.preprocessor(self.cfg).tokenizer

    def __call__(self, batch, generator):
        from xmbench.data.augment import _shared
        from xmbench.lazy import torch

        inputs = batch.inputs["text"]
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        texts = self.tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)
        changed = {}
        for row, text in enumerate(texts):
            new, did = replace_synonyms(words(text), self.table, self.longest, self.p, generator)
            if did:
                changed[row] = " ".join(new)
        if not changed:
            return batch
        tokens = self.tokenizer(list(changed.values()), padding=True, truncation=True,
                                max_length=self.cfg.max_text_tokens, return_tensors="pt")
        width = max(int(mask.sum(1).max()), tokens["input_ids"].shape[1])
        new_ids = torch.full((len(ids), width), self.tokenizer.pad_token_id, dtype=ids.dtype)
        new_mask = torch.zeros((len(ids), width), dtype=mask.dtype)
        new_ids[:, :ids.shape[1]], new_mask[:, :mask.shape[1]] = ids.cpu(), mask.cpu()
        rows = torch.tensor(list(changed))
        new_ids[rows] = self.tokenizer.pad_token_id
        new_mask[rows] = 0
        new_ids[rows, :tokens["input_ids"].shape[1]] = tokens["input_ids"].to(ids.dtype)
        new_mask[rows, :tokens["attention_mask"].shape[1]] = tokens["attention_mask"].to(mask.dtype)
        width = int(new_mask.sum(1).max())  # trimmed to the longest row, as EncodedSplit.rows does
        text = {**inputs, "input_ids": new_ids[:, :width].to(ids.device), "attention_mask": new_mask[:, :width].to(mask.device)}
        return _shared.derive(batch, {"text": text})


@AUGMENTATIONS.register("synonyms", SynonymOptions)
def synonyms(split, options: SynonymOptions):
    """Synonym replacement in captions (built-in vocabulary table and/or a JSON table), re-tokenised."""
    return Synonyms(split, options)
