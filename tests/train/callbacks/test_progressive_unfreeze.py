"""Progressive unfreezing: one more layer from the top every K steps, up to a maximum; unfrozen layers join the optimizer."""
import pytest

from tests.train.callbacks.test_unfreeze_top import base_weights, changed, run
from xmbench.train.callbacks.progressive_unfreeze import ProgressiveUnfreezeOptions, layers_at

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.mark.parametrize(("options", "expected"), [
    ({"every": 2, "max_layers": 3}, [1, 1, 2, 2, 3, 3, 3, 3]),
    ({"every": 3, "max_layers": 2, "start": 2}, [0, 0, 1, 1, 1, 2, 2, 2]),
    ({"every": 1, "max_layers": 1}, [1] * 8),
])
def test_layers_at_each_step(options, expected):
    assert [layers_at(step, ProgressiveUnfreezeOptions(**options)) for step in range(8)] == expected


def test_one_more_layer_every_k_steps_trains_and_joins_the_optimizer(tiny_base):
    callback = {"name": "progressive_unfreeze", "every": 2, "max_layers": 2, "towers": ["image"]}
    model, before, watch = run(tiny_base, callback, 4)
    names = set(before)
    top, below = base_weights(names, "image", 1), base_weights(names, "image", 0)
    norm = {n for n in base_weights(names, "image", None) if "embeddings" not in n}  # ViT's final layernorm
    assert norm and any(".base_layer." in n for n in top)
    assert [n["progressive_unfreeze/layers"] for n in watch.notes] == [1, 1, 2, 2]
    for step in range(4):
        assert top | norm <= watch.trainable[step] and top | norm <= watch.in_optimizer[step]
        assert (below <= watch.trainable[step]) is (step >= 2) and (below <= watch.in_optimizer[step]) is (step >= 2)
        if step < 2:
            assert not below & watch.trainable[step] and not below & watch.in_optimizer[step]
        assert not base_weights(names, "text", 1) & watch.trainable[step]  # a tower not chosen stays as it was
    assert changed(model, before, top | below | norm) == top | below | norm
    embeddings = {n for n in base_weights(names, "image", None) if "embeddings" in n}
    assert embeddings and not changed(model, before, embeddings | base_weights(names, "text", 1))


def test_a_run_resumed_after_unfreezing_continues_like_an_uninterrupted_one(tiny_base, tmp_path):
    """The checkpoint keeps the optimizer's groups by parameter name: layers unfrozen before it train on after it."""
    import dataclasses

    import torch

    from xmbench.config import resolve
    from xmbench.data.sources import load_split
    from xmbench.models.reference import build_reference
    from xmbench.train.engine import train

    callback = {"name": "progressive_unfreeze", "every": 2, "max_layers": 2, "towers": ["image"]}
    config = resolve(tiny_base, {"train.callbacks": [callback], "train.steps": 6, "train.checkpoint_every": 3,
                                 "train.eval_every": 0})
    split = load_split(config.data, "train")

    def run_for(steps, folder):
        torch.manual_seed(0)
        model = build_reference(config, split.modalities)
        result = train(model, split, dataclasses.replace(config.train, steps=steps), seed=0,
                       pairs=config.train.modality_pairs(), progress=False, checkpoint_dir=folder,
                       checkpoint_identity="x", callbacks=[_callback(callback)])
        return model, [s.loss for s in result.steps]

    straight, straight_losses = run_for(6, tmp_path / "straight")
    run_for(3, tmp_path / "resumed")  # stops after the checkpoint at step 3: layer 1 unfrozen, layer 0 not yet
    resumed, resumed_losses = run_for(6, tmp_path / "resumed")
    assert resumed_losses == straight_losses
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), name


def _callback(table):
    from xmbench.registry import CALLBACKS
    from xmbench.schema import load_choice

    return CALLBACKS.bind(load_choice("callback", table, "train.callbacks[0]"))()
