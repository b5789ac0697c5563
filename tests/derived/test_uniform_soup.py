"""uniform_soup: exactly the mean of the members' trainable weights, one model; other structures or foundations refused."""
import pytest
import torch

from tests.derived._helpers import (
    member,
)
from xmbench.errors import ConfigError
from xmbench.models import capabilities
from xmbench.registry import DERIVED, TRANSFORMS

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def soup(models, **options):
    return DERIVED.bind(DERIVED.default("uniform_soup", **options))(models, val=None, eval_config=None)


def test_the_soup_is_the_mean_of_two_members_trainable_weights_exactly(tiny_base):
    a, b = member(tiny_base, seed=0, perturb=1), member(tiny_base, seed=0, perturb=2)  # one foundation, two fine-tunes
    before = [{n: p.detach().clone() for n, p in m.named_parameters()} for m in (a, b)]
    souped = soup([a, b])
    trainable = [n for n, p in a.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable) and any(n.startswith("heads.") for n in trainable)
    assert any(n.startswith("temperature.") for n in trainable)
    for name, p in souped.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, (before[0][name] + before[1][name]) / 2), name
        else:
            assert torch.equal(p, before[0][name]) and torch.equal(p, before[1][name]), name
    # the inputs are left as they were; the soup is one model: one member's parameters and cost
    assert all(torch.equal(p, before[0][n]) for n, p in a.named_parameters())
    assert capabilities.count_parameters(souped) == capabilities.count_parameters(a)
    assert type(souped) is type(a) and not capabilities.can_score(souped)
    assert capabilities.adapter_stats(souped)["soup"]["ingredients"] == [0, 1]


def test_members_of_another_structure_or_foundation_are_refused(tiny_base):
    base = member(tiny_base, seed=0, perturb=1)
    shapes = r"lora_A.*\(8, 32\) torch.float32 in input 0 and \(2, 32\) torch.float32 in input 1; .*one foundation"
    with pytest.raises(ConfigError, match=shapes):
        soup([base, member(tiny_base, seed=0, perturb=2, **{"model.*.adapter.rank": 2})])
    with pytest.raises(ConfigError, match="differ in structure"):
        soup([base, member(tiny_base, seed=0, perturb=2, **{"model.*.adapter.targets": ["query", "key", "value"]})])
    with pytest.raises(ConfigError, match="not trained from the same foundation: the frozen towers"):
        soup([base, member(tiny_base, seed=1, perturb=2)])  # other towers: another starting point
    with pytest.raises(ConfigError, match="at least two"):
        soup([base])


def test_merged_members_are_souped_with_average_all(tiny_base):
    merge = TRANSFORMS.bind(TRANSFORMS.default("merge"))
    a, b = merge(member(tiny_base, seed=0, perturb=1)), merge(member(tiny_base, seed=0, perturb=2))
    with pytest.raises(ConfigError, match='average = "all"'):
        soup([a, b])
    souped = soup([a, b], average="all")
    state, sa, sb = souped.state_dict(), a.state_dict(), b.state_dict()
    name = next(n for n in state if n.endswith("attention.self.query.weight"))  # a merged (W + ΔW) weight
    assert not torch.equal(sa[name], sb[name])
    assert torch.equal(state[name], (sa[name] + sb[name]) / 2)
