"""The shipped model is good, evaluation is cancellable, and the session guards input."""

import numpy as np
import pytest

from core.ablation import Ablation
from core.errors import Cancelled, InputError
from core.jobs import CancelToken


def test_shipped_cnn_reaches_95_percent(session):
    result = session.evaluate()
    assert result.n == 359  # the held-out 20 %, never seen in training
    assert result.score >= 0.95
    assert result.per_group.shape == (10,)
    assert result.loss < 0.2


def test_ablating_many_channels_hurts(session):
    # Without any first-layer channel the rest of the net sees only biases: near chance.
    result = session.evaluate([Ablation("conv1", tuple(range(16)))])
    assert result.score < 0.3
    assert result.delta == pytest.approx(result.score - result.baseline_score)


def test_cancelled_evaluation_raises(session):
    seen = []
    token = CancelToken(lambda f, t: (seen.append(f), token.cancel()))
    with pytest.raises(Cancelled):
        session.evaluate([Ablation("conv1", (1,))], token=token)
    assert seen  # progress was reported before the cancel took effect


def test_capture_rejects_wrong_shape(session):
    with pytest.raises(InputError, match="expects"):
        session.capture(np.zeros((1, 8, 8), np.float32), ["conv1"])
    with pytest.raises(InputError, match="does not exist"):
        session.sample(10_000)


def test_capture_returns_read_only_copies(session, dataset):
    cap = session.capture(dataset.inputs[0], ["conv1"])
    arr = cap.activations["conv1"]
    assert arr.shape == (16, 16, 16) and not arr.flags.writeable
    assert cap.prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def evaluators():
    from core.analysis.cache import ActivationCache
    from core.analysis.evaluate import Evaluator
    from core.datasets import load_digits, load_induction
    from core.zoo.loading import open_zoo

    cnn = Evaluator(open_zoo("digits_cnn"), load_digits("eval"), ActivationCache(1 << 28))
    tiny = Evaluator(open_zoo("induction_transformer"), load_induction(),
                     ActivationCache(1 << 28))
    return {"digits_cnn": cnn, "induction_transformer": tiny}


@pytest.mark.parametrize("mode", ["zero", "mean"])
@pytest.mark.parametrize("model,site,units", [
    ("digits_cnn", "conv1", range(16)),        # resumes from the site itself
    ("digits_cnn", "conv2", range(0, 32, 2)),
    ("digits_cnn", "fc1", range(0, 64, 3)),
    ("digits_cnn", "relu1", range(0, 16, 5)),
    ("induction_transformer", "block0.attn.heads", range(4)),  # nested: hooked
    ("induction_transformer", "block1.attn.heads", range(4)),
])
def test_sweep_equals_one_evaluation_per_unit(evaluators, model, site, units, mode):
    # Issue 12: sweeps of top-level layers resumed from the layer's own cached output,
    # so the hooked layer never ran and every unit read as the intact accuracy.
    evaluator = evaluators[model]
    sweep = evaluator.sweep(site, units, mode)
    singles = [evaluator.evaluate((Ablation(site, (u,), mode),)) for u in units]
    np.testing.assert_allclose(sweep.score, [r.score for r in singles], atol=1e-12)
    np.testing.assert_allclose(sweep.loss, [r.loss for r in singles], rtol=1e-5)


def test_labels_the_model_has_no_output_for_count_as_wrong():
    from core.analysis.evaluate import _scores
    from core.datasets import Dataset

    labels = np.array([0, 1, 2, 2, 5])
    data = Dataset("d", np.zeros((5, 1)), labels, ("a", "b", "c", "d", "e", "f"), None,
                   labels, tuple("abcdef"))
    logits = np.array([[5.0, 0, 0], [0, 5, 0], [0, 0, 5], [5, 0, 0], [0, 0, 5]])
    accuracy, loss, per_group = _scores(logits, data)
    assert accuracy == pytest.approx(3 / 5)  # label 5 does not exist for a 3-class model
    expected = -np.log(np.exp(5) / (np.exp(5) + 2)) * 3 + -np.log(1 / (np.exp(5) + 2))
    assert loss == pytest.approx(expected / 4)  # the mean over the 4 answerable ones
    assert per_group[5] == 0 and per_group[2] == 0.5 and np.isnan(per_group[3])
