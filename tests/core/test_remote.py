"""The session in a child process answers exactly like the local one."""

import numpy as np
import pytest

from core.ablation import Ablation
from core.errors import Cancelled, InputError
from core.jobs import CancelToken


def test_same_answers_as_the_local_session(remote, session):
    abl = (Ablation("conv2", (3, 7)),)
    assert remote.evaluate(abl).score == session.evaluate(abl).score
    x = session.sample(4).model_input
    here = session.capture(x, ["conv1"], abl)
    there = remote.capture(x, ["conv1"], abl)
    np.testing.assert_array_equal(here.activations["conv1"], there.activations["conv1"])
    np.testing.assert_array_equal(here.prediction.probabilities, there.prediction.probabilities)


def test_user_errors_cross_the_process_boundary(remote):
    with pytest.raises(InputError, match="does not exist"):
        remote.sample(10_000)
    assert remote.sample(1).model_input.shape == (1, 16, 16)  # still in step


def test_cancel_then_the_next_call_still_works(remote):
    seen = []

    def on_progress(fraction, text):
        seen.append(fraction)
        token.cancel()

    token = CancelToken(on_progress)
    with pytest.raises(Cancelled):
        remote.evaluate((Ablation("fc1", (1, 2, 3), "mean"),), token=token)
    assert seen
    assert remote.evaluate().score > 0.95


def test_progress_is_forwarded(remote):
    seen = []
    remote.evaluate((Ablation("fc1", (5,)),), token=CancelToken(lambda f, t: seen.append(t)))
    assert any("evaluating" in text for text in seen)
