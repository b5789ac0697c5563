"""EncodedSplit's row bookkeeping: which rows belong to items with a known hard negative."""
import torch

from xmbench.data.preprocess import EncodedSplit


def split(hard_negative_of):
    n = len(hard_negative_of)
    caption_item = torch.arange(n).repeat_interleave(2)  # two captions per item
    offsets = torch.arange(0, 2 * n + 1, 2)
    return EncodedSplit("test", [f"i{k}" for k in range(n)], {"input_ids": torch.zeros(2 * n, 3, dtype=torch.long)},
                        caption_item, offsets, {"pixel_values": torch.zeros(n, 3, 2, 2)}, None, hard_negative_of)


def test_hard_negative_rows_cover_both_sides_of_each_pair():
    encoded = split([-1, 0, -1, -1, 3, -1])  # item 1 derived from 0, item 4 from 3
    assert encoded.hard_negative_rows("image") == [0, 1, 3, 4]
    assert encoded.hard_negative_rows("text") == [0, 1, 2, 3, 6, 7, 8, 9]  # every caption of those items


def test_hard_negative_rows_unknown_or_outside_the_split():
    assert split([-1, -1]).hard_negative_rows("image") == []
    assert split([-1, 7]).hard_negative_rows("image") == []  # its pair is not in this split
    unknown = split([-1, -1])
    unknown.hard_negative_of = None
    assert unknown.hard_negative_rows("text") is None
