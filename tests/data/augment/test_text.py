"""Text augmentations: synonym replacement (decoded, replaced, re-tokenised) and word dropout on token ids."""
import json

import pytest
import torch

from tests.data.augment._helpers import build, generator, tiny_split
from xmbench.data import synthetic
from xmbench.data.augment import synonyms as syn
from xmbench.errors import ConfigError
from xmbench.train.step import Batch


@pytest.fixture(scope="module")
def split():
    return tiny_split()


@pytest.fixture(scope="module")
def tokenizer(split):
    from xmbench.data.augment import _shared

    return _shared.preprocessor(split.config).tokenizer


def text_batch(tokenizer, captions, max_length=32):
    tokens = tokenizer(captions, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    ids = torch.arange(len(captions))
    return Batch({"text": {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}}, {"text": ids})


def decoded(tokenizer, batch):
    return tokenizer.batch_decode(batch.inputs["text"]["input_ids"], skip_special_tokens=True)


def well_formed(tokenizer, batch):
    ids, mask = batch.inputs["text"]["input_ids"], batch.inputs["text"]["attention_mask"]
    lengths = mask.sum(1)
    assert int(lengths.max()) == ids.shape[1]  # trimmed to the longest row
    assert torch.equal(mask, (torch.arange(ids.shape[1])[None] < lengths[:, None]).to(mask.dtype))  # ones, then zeros
    assert (ids[mask == 0] == tokenizer.pad_token_id).all()
    assert (ids[:, 0] == tokenizer.cls_token_id).all()
    assert (ids.gather(1, (lengths - 1)[:, None])[:, 0] == tokenizer.sep_token_id).all()


# --- synonyms ---------------------------------------------------------------------------------

def test_decoding_and_retokenising_gives_back_every_built_in_caption(split, tokenizer):
    """The premise of the decode route: a caption row decoded and split into words tokenises to the same ids."""
    for source in (split, tiny_split("target")):
        ids, mask = source.text["input_ids"], source.text["attention_mask"]
        again = tokenizer([" ".join(syn.words(t)) for t in tokenizer.batch_decode(ids, skip_special_tokens=True)],
                          padding="max_length", max_length=ids.shape[1], truncation=True, return_tensors="pt")
        assert torch.equal(again["input_ids"], ids) and torch.equal(again["attention_mask"], mask)


def test_the_built_in_table_covers_the_built_in_vocabulary():
    table = syn.builtin_table()
    vocabulary = set(synthetic.SHAPES) | set(synthetic.COLOURS) | set(synthetic.SIZES)
    vocabulary |= {w for words in (*synthetic.SOURCE_WORDS.values(), *synthetic.TARGET_WORDS.values()) for w in words}
    assert {w for w in vocabulary if syn.words(w) not in table} == {"triangle"}  # no synonym of it fits
    connectives = ["from left to right", "then", "there is", "an image with", "to the left of", "a picture of", "just",
                   "on the left", "in the middle", "on the right", "followed by", "to the right of", "we see",
                   "next to", "shapes", "only", "a lone", "by itself"]
    assert all(syn.words(c) in table for c in connectives)
    sides = lambda words: [w for w in words if w in ("left", "right")]  # noqa: E731
    for phrase, options in table.items():  # left and right are never exchanged, added or lost
        assert all(sides(o) == sides(phrase) for o in options), (phrase, options)


def test_seeded_replacement_is_exact_and_reproducible(split, tokenizer):
    batch = text_batch(tokenizer, ["a small red circle to the left of a large blue square", "just a tiny plus sign"])
    aug = build("synonyms", split, p=1.0)
    out = aug(batch, generator(0))
    assert decoded(tokenizer, out) == ["a little scarlet round dot left of a big azure box",
                                       "only a small cross"]
    well_formed(tokenizer, out)
    assert decoded(tokenizer, aug(batch, generator(0))) == decoded(tokenizer, out)
    assert decoded(tokenizer, aug(batch, generator(1))) != decoded(tokenizer, out)
    # p = 0: nothing changes, yet two draws per phrase are made (the stream does not depend on p)
    g0, g1 = generator(5), generator(5)
    assert build("synonyms", split, p=0.0)(batch, g0) is batch
    aug(batch, g1)
    assert torch.equal(g0.get_state(), g1.get_state())


def test_each_phrase_is_replaced_with_probability_p(split, tokenizer):
    batch = text_batch(tokenizer, ["a small red circle"] * 200)
    out = decoded(tokenizer, build("synonyms", split, p=0.25)(batch, generator(3)))
    kept = sum(text.split()[-1] == "circle" for text in out) / len(out)  # "circle" replaced by disc / round dot
    assert 0.65 < kept < 0.85
    assert all(text.split()[-1] in ("circle", "disc", "dot") for text in out)


def test_changed_captions_are_truncated_like_the_preprocessor(tokenizer):
    short = tiny_split(max_text_tokens=8)
    batch = text_batch(tokenizer, ["a small red circle", "just a cross"], max_length=8)
    out = build("synonyms", short, p=1.0)(batch, generator(2))
    assert out.inputs["text"]["input_ids"].shape[1] <= 8
    well_formed(tokenizer, out)


def test_a_user_table_adds_or_replaces_phrases(split, tokenizer, tmp_path):
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"circle": ["ring"], "Red Square": ["crimson box"]}))
    batch = text_batch(tokenizer, ["a small red circle", "a red square"])
    alone = build("synonyms", split, p=1.0, table=str(path), builtin=False)(batch, generator(0))
    assert decoded(tokenizer, alone) == ["a small red ring", "a crimson box"]  # phrases match longest first
    merged = decoded(tokenizer, build("synonyms", split, p=1.0, table=str(path))(batch, generator(0)))
    assert merged[0].endswith(" ring") and merged[0] != "a small red ring"  # the sizes and colours change too


def test_bad_tables_are_config_errors(split, tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        build("synonyms", split, table=str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"circle": "ring"}))
    with pytest.raises(ConfigError, match="'circle' must map to a non-empty list"):
        build("synonyms", split, table=str(bad))
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        build("synonyms", split, table=str(bad))
    with pytest.raises(ConfigError, match="has no table"):
        build("synonyms", split, builtin=False)


# --- word dropout -----------------------------------------------------------------------------

def test_a_word_goes_with_its_pieces_and_special_tokens_stay(split, tokenizer):
    batch = text_batch(tokenizer, ["a big rhombus"])
    ids, mask = batch.inputs["text"]["input_ids"], batch.inputs["text"]["attention_mask"]
    assert tokenizer.convert_ids_to_tokens(ids[0]) == ["[CLS]", "a", "big", "r", "##hom", "##bus", "[SEP]"]
    aug = build("word_dropout", split, p=0.5)
    uniform = torch.tensor([[0.0, 0.9, 0.9, 0.1, 0.9, 0.9, 0.0]])  # [CLS]/[SEP] low: never dropped
    assert aug.drop(ids, mask, uniform).tolist() == [[False, False, False, True, True, True, False]]
    pieces = build("word_dropout", split, p=0.5, unit="token")
    assert pieces.drop(ids, mask, uniform).tolist() == [[False, False, False, True, False, False, False]]
    everything = torch.zeros(1, 7)  # every word would go: the caption keeps them all
    assert not aug.drop(ids, mask, everything).any()


def test_dropped_tokens_close_up_and_the_mask_follows(split, tokenizer):
    captions = ["a small red circle to the left of a large blue square", "just a tiny plus sign", "a rhombus"]
    batch = text_batch(tokenizer, captions)
    aug = build("word_dropout", split, p=0.4)
    out = aug(batch, generator(4))
    well_formed(tokenizer, out)
    uniform = torch.rand(batch.inputs["text"]["input_ids"].shape, generator=generator(4))
    drop = aug.drop(batch.inputs["text"]["input_ids"], batch.inputs["text"]["attention_mask"], uniform)
    for row in range(len(captions)):
        ids, mask = batch.inputs["text"]["input_ids"][row], batch.inputs["text"]["attention_mask"][row]
        expected = ids[mask.bool() & ~drop[row]].tolist()
        got = out.inputs["text"]["input_ids"][row][out.inputs["text"]["attention_mask"][row].bool()].tolist()
        assert got == expected
    assert drop.any()
    assert decoded(tokenizer, out) == ["a the left of a square", "just a", "rhombus"]
    assert decoded(tokenizer, aug(batch, generator(4))) == decoded(tokenizer, out)


def test_word_dropout_rate(split, tokenizer):
    batch = text_batch(tokenizer, ["a small red circle to the left of a large blue square"] * 100)
    out = build("word_dropout", split, p=0.2)(batch, generator(1))
    words_before = 12 * 100
    words_after = sum(len(t.split()) for t in decoded(tokenizer, out))
    assert 0.72 < words_after / words_before < 0.88
