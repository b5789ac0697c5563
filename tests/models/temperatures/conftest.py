"""A loss that only wants a larger logit scale: training drives every trained pair's temperature down."""
import dataclasses

import pytest

from xmbench.registry import LOSSES, Entry, NoOptions


@pytest.fixture
def sharpening_loss(monkeypatch):
    """Registers loss "sharpen": each pair's part is minus its logit scale (so its temperature only falls)."""
    def sharpen(inputs, options):
        from xmbench.train.step import LossOutput

        return LossOutput({f"{a}-{b}": -inputs.logit_scales[f"{a}-{b}"] for a, b in inputs.pairs})

    monkeypatch.setitem(LOSSES._entries, "sharpen", Entry("sharpen", sharpen, NoOptions, ""))
    return lambda cfg: dataclasses.replace(cfg, loss=LOSSES.default("sharpen"))
