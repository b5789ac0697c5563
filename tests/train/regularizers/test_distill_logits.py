"""Logit distillation: weight · mean over pairs of (KL rows + KL columns)/2 of softmax(T/τ) ‖ softmax(S/τ)."""
import math

import pytest
import torch

from xmbench.registry import REGULARIZERS
from xmbench.train.step import LossInput

TEXT = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
IMAGE = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
TEACHER_IMAGE = torch.tensor([[1.0, 0.0], [0.6, 0.8]])


def distill(embeddings, teacher, pairs=(("text", "image"),), model=None, **options):
    inputs = LossInput(embeddings, {}, {}, list(pairs), model, teacher=teacher)
    return REGULARIZERS.bind(REGULARIZERS.default("distill_logits", **options))(inputs)


def kl_rows(student, teacher, tau):
    """mean over rows of Σ_j p_j log(p_j / q_j), p = softmax(teacher row / τ), q = softmax(student row / τ): plain Python."""
    def softmax(row):
        e = [math.exp(x / tau) for x in row]
        return [x / sum(e) for x in e]

    total = 0.0
    for s_row, t_row in zip(student, teacher):
        p, q = softmax(t_row), softmax(s_row)
        total += sum(pj * math.log(pj / qj) for pj, qj in zip(p, q))
    return total / len(student)


def transpose(m):
    return [list(col) for col in zip(*m)]


def test_zero_when_the_student_is_the_teacher():
    embeddings = {"text": TEXT, "image": IMAGE}
    assert distill(embeddings, {"text": TEXT.clone(), "image": IMAGE.clone()}, temperature=0.1).item() == pytest.approx(
        0.0, abs=1e-7)


def test_matches_the_hand_computation_both_directions():
    student = (TEXT @ IMAGE.T).tolist()  # [[0.8, 0], [0.6, 1]]
    teacher = (TEXT @ TEACHER_IMAGE.T).tolist()  # [[1, 0.6], [0, 0.8]]
    tau = 0.5
    expected = (kl_rows(student, teacher, tau) + kl_rows(transpose(student), transpose(teacher), tau)) / 2
    value = distill({"text": TEXT, "image": IMAGE}, {"text": TEXT, "image": TEACHER_IMAGE}, temperature=tau, weight=3.0)
    assert expected > 0.01 and value.item() == pytest.approx(3.0 * expected, rel=1e-5)


def test_mean_over_the_pairs_the_teacher_covers():
    audio = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    embeddings = {"text": TEXT, "image": IMAGE, "audio": audio}
    teacher = {"text": TEXT, "image": TEACHER_IMAGE, "audio": audio}
    pairs = [("text", "image"), ("text", "audio"), ("image", "audio")]
    one = lambda a, b: distill(embeddings, teacher, [(a, b)], temperature=0.3).item()  # noqa: E731
    both = distill(embeddings, teacher, pairs, temperature=0.3).item()
    assert one("text", "audio") == pytest.approx(0.0, abs=1e-7)  # same audio and text in both
    assert both == pytest.approx((one("text", "image") + one("image", "audio")) / 3, rel=1e-5)
    # a teacher without audio: only text-image counts
    covered = distill(embeddings, {"text": TEXT, "image": TEACHER_IMAGE}, pairs, temperature=0.3).item()
    assert covered == pytest.approx(one("text", "image"), rel=1e-6)


def test_no_teacher_is_zero():
    value = distill({"text": TEXT, "image": IMAGE}, None)
    assert value.item() == 0.0 and not value.requires_grad


def test_a_model_that_scores_pairs_is_distilled_on_its_scores():
    class Fused:
        def score(self, a, queries, b, gallery):
            return 2.0 * queries @ gallery.T

    # the fused student's scores are twice its dot products: equal to a teacher with twice the similarity
    value = distill({"text": TEXT, "image": IMAGE}, {"text": 2 * TEXT, "image": IMAGE}, model=Fused(), temperature=0.2)
    assert value.item() == pytest.approx(0.0, abs=1e-6)


def test_gradient_reaches_the_student_only():
    image = IMAGE.clone().requires_grad_(True)
    teacher_image = TEACHER_IMAGE.clone().requires_grad_(True)
    distill({"text": TEXT, "image": image}, {"text": TEXT, "image": teacher_image}, temperature=0.5).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0 and teacher_image.grad is None
