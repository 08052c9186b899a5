"""The lesson trainers: exact gradient steps, documented results, determinism."""

import numpy as np
import pytest
import torch

from core.lessons import LESSONS, lesson
from core.lessons.training import TRAINERS, LinearRegression
from core.session import Session


def test_one_linear_regression_step_is_the_closed_form_update():
    trainer = LinearRegression(seed=3, lr=0.05)
    x, y = trainer.x.numpy()[:, 0].astype(np.float64), trainer.y.numpy()[:, 0]
    w, b = 0.0, 0.0  # the trainer starts at zero
    residual = w * x + b - y
    grad_w, grad_b = 2 * np.mean(residual * x), 2 * np.mean(residual)
    # Step 0 shows the gradient the first step will use — the lesson asks the user to
    # check it by hand (it was shown one step late, as 0, before issue #12).
    first = trainer.snapshot()
    assert first.grads["weight"][0, 0] == pytest.approx(grad_w, rel=1e-5) != 0
    assert first.grads["bias"][0] == pytest.approx(grad_b, rel=1e-5)
    trainer.step(1)
    snap = trainer.snapshot()
    w1, b1 = w - 0.05 * grad_w, b - 0.05 * grad_b
    assert snap.params["weight"][0, 0] == pytest.approx(w1, rel=1e-5)
    assert snap.params["bias"][0] == pytest.approx(b1, rel=1e-5)
    residual = w1 * x + b1 - y  # and then the gradient at the new parameters
    assert snap.grads["weight"][0, 0] == pytest.approx(2 * np.mean(residual * x), rel=1e-4)
    assert len(snap.losses) == 2 and snap.losses[1] < snap.losses[0]


# Documented results (README "Lessons"): after 100 full-batch steps at the default
# learning rates, seed 0.
@pytest.mark.parametrize("name,max_loss,min_metric", [
    ("linear", 0.42, None), ("logistic", 0.20, 0.90), ("mlp", 0.10, 0.95)])
def test_lessons_reach_documented_results(name, max_loss, min_metric):
    trainer = TRAINERS[name](seed=0)
    trainer.step(100)
    snap = trainer.snapshot()
    assert snap.losses[-1] <= max_loss
    if min_metric is not None:
        assert snap.metric >= min_metric


def test_same_seed_same_run_other_seed_other_data():
    a, b, c = (TRAINERS["logistic"](seed=s) for s in (1, 1, 2))
    for t in (a, b, c):
        t.step(5)
    np.testing.assert_array_equal(a.snapshot().losses, b.snapshot().losses)
    assert not np.array_equal(a.snapshot().data["points"], c.snapshot().data["points"])


def test_plot_data_shapes():
    snap = TRAINERS["logistic"](seed=0).snapshot()
    assert snap.data["prob"].shape == (60, 60)
    mlp = TRAINERS["mlp"](seed=0).snapshot(sample=4)
    assert mlp.data["hidden"].shape == (16,) and mlp.data["sample"] == 4


def test_trained_mlp_opens_in_the_workbench():
    session = Session()
    session.lesson_start("mlp", seed=0)
    session.lesson_step(60)
    info = session.open_lesson_model()
    assert [layer.name for layer in info.layers] == ["flatten", "fc1", "relu1", "fc2"]
    base = session.evaluate().score
    assert base > 0.9
    from core.ablation import Ablation

    assert session.evaluate([Ablation("fc1", tuple(range(16)))]).score < base
    # Training on does not change the model already opened in the workbench.
    session.lesson_step(5)
    assert session.evaluate().score == base


def test_every_lesson_has_its_text():
    assert [item.number for item in LESSONS] == [1, 2, 3, 4, 5, 6]
    for item in LESSONS:
        text = item.text()
        assert text.startswith("# ") and "Try" in text
    assert lesson(6).model == "digits_cnn"
    torch.manual_seed(0)
