"""score_ensemble: the weighted mean of the members' own similarity matrices, as a model offering `score`."""
import pytest
import torch

from tests.derived._helpers import (
    DIRECTIONS,
    assert_same_metrics,
    embeddings,
    member,
    metrics_of_scores,
    split,
)
from xmbench.errors import ConfigError
from xmbench.eval.retrieval import direction_modalities, encode_split, evaluate_model
from xmbench.models import capabilities
from xmbench.registry import DERIVED

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def build(models, **options):
    return DERIVED.bind(DERIVED.default("score_ensemble", **options))(models, val=None, eval_config=None)


def test_scores_and_metrics_equal_the_weighted_mean_of_the_members_similarities(tiny_base):
    # members of different embedding widths: each ranks in its own space, which embedding averaging cannot do
    members = [member(tiny_base, seed=0), member(tiny_base, seed=1, **{"model.embed_dim": 8})]
    ensemble = build(members, weights=[0.7, 0.3])
    assert capabilities.can_score(ensemble) and ensemble.modalities == ("text", "image", "audio")
    data = split(tiny_base)
    own = [embeddings(m, data) for m in members]
    hand = {}
    for direction in DIRECTIONS:
        q, g = direction_modalities(direction)
        hand[direction] = 0.7 * own[0][q] @ own[0][g].T + 0.3 * own[1][q] @ own[1][g].T
    encoded = {m: encode_split(ensemble, data, m) for m in ("text", "audio")}
    assert encoded["text"].shape == (data.n_rows("text"), 16 + 8)
    assert torch.allclose(ensemble.score("text", encoded["text"], "audio", encoded["audio"]), hand["t2a"], atol=1e-6)
    metrics, _, _ = evaluate_model(ensemble, data, list(DIRECTIONS))
    assert_same_metrics(metrics, metrics_of_scores(hand, data))


def test_default_weights_are_equal_and_a_wrong_count_is_refused(tiny_base):
    members = [member(tiny_base, seed=0), member(tiny_base, seed=1)]
    assert build(members).weights == [0.5, 0.5]
    with pytest.raises(ConfigError, match="3 weights for 2 input variants"):
        build(members, weights=[0.2, 0.3, 0.5])


def test_score_refuses_rows_it_did_not_encode(tiny_base):
    ensemble = build([member(tiny_base, seed=0), member(tiny_base, seed=1)])
    with pytest.raises(Exception, match="no text rows were encoded"):
        ensemble.score("text", torch.zeros(2, 32), "image", torch.zeros(3, 32))
    data = split(tiny_base)
    text = encode_split(ensemble, data, "text")
    image = encode_split(ensemble, data, "image")
    with pytest.raises(Exception, match="not this ensemble's encoding"):
        ensemble.score("text", text[:, :16], "image", image)
