"""Feature distillation: weight · mean over modalities of mean_i (1 − cos(s_i, t_i)), or of the mean squared difference."""
import pytest
import torch

from xmbench.registry import REGULARIZERS
from xmbench.train.step import LossInput

TEXT = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
TEACHER_TEXT = torch.tensor([[0.0, 1.0], [0.6, 0.8]])  # cosines with TEXT: 0 and 0.8
IMAGE = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
TEACHER_IMAGE = torch.tensor([[-3.0, -4.0], [2.0, 0.0]])  # cosines: −1 and 1


def distill(embeddings, teacher, **options):
    inputs = LossInput(embeddings, {}, {}, [("text", "image")], None, teacher=teacher)
    return REGULARIZERS.bind(REGULARIZERS.default("distill_features", **options))(inputs)


@pytest.mark.parametrize("metric", ["cosine", "mse"])
def test_zero_when_the_student_is_the_teacher(metric):
    embeddings = {"text": TEXT, "image": IMAGE}
    value = distill(embeddings, {m: e.clone() for m, e in embeddings.items()}, metric=metric)
    assert value.item() == pytest.approx(0.0, abs=1e-7)


def test_cosine_by_hand():
    text = ((1 - 0.0) + (1 - 0.8)) / 2  # 0.6
    image = ((1 - -1.0) + (1 - 1.0)) / 2  # 1.0
    value = distill({"text": TEXT, "image": IMAGE}, {"text": TEACHER_TEXT, "image": TEACHER_IMAGE}, weight=0.5)
    assert value.item() == pytest.approx(0.5 * (text + image) / 2)


def test_mse_by_hand():
    text = ((1 - 0) ** 2 + (0 - 1) ** 2 + (0 - 0.6) ** 2 + (1 - 0.8) ** 2) / 4
    image = (6 ** 2 + 8 ** 2 + 1 ** 2 + 0 ** 2) / 4
    value = distill({"text": TEXT, "image": IMAGE}, {"text": TEACHER_TEXT, "image": TEACHER_IMAGE}, metric="mse",
                    weight=2.0)
    assert value.item() == pytest.approx(2.0 * (text + image) / 2)


def test_only_modalities_the_teacher_embedded_and_no_teacher_is_zero():
    value = distill({"text": TEXT, "image": IMAGE}, {"text": TEACHER_TEXT})
    assert value.item() == pytest.approx(0.6)
    assert distill({"text": TEXT, "image": IMAGE}, None).item() == 0.0
    assert distill({"text": TEXT, "image": IMAGE}, {"audio": TEXT}).item() == 0.0


def test_another_width_is_an_error():
    with pytest.raises(ValueError, match=r"teacher's text embeddings are \(2, 3\), the student's \(2, 2\)"):
        distill({"text": TEXT}, {"text": torch.zeros(2, 3)})


def test_gradient_reaches_the_student_only():
    text = TEXT.clone().requires_grad_(True)
    teacher = TEACHER_TEXT.clone().requires_grad_(True)
    distill({"text": text}, {"text": teacher}, metric="mse").backward()
    # d/ds mean((s − t)²) = 2 (s − t) / n_elements
    assert torch.allclose(text.grad, 2 * (TEXT - TEACHER_TEXT) / 4) and teacher.grad is None
