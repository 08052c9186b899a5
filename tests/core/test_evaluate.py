"""The shipped model is good, evaluation is cancellable, and the session guards input."""

import numpy as np
import pytest

from core.ablation import Ablation
from core.errors import Cancelled, InputError
from core.jobs import CancelToken


def test_shipped_cnn_reaches_95_percent(session):
    result = session.evaluate()
    assert result.n == 359  # the held-out 20 %, never seen in training
    assert result.accuracy >= 0.95
    assert result.per_group.shape == (10,)
    assert result.loss < 0.2


def test_ablating_many_channels_hurts(session):
    # Without any first-layer channel the rest of the net sees only biases: near chance.
    result = session.evaluate([Ablation("conv1", tuple(range(16)))])
    assert result.accuracy < 0.3
    assert result.delta == pytest.approx(result.accuracy - result.baseline_accuracy)


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
    assert cap.prediction.probs.sum() == pytest.approx(1.0, abs=1e-5)
