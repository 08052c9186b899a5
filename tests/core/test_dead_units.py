"""Dead units (issue #12): units that never fire after their rectifier on the dataset
are found, shown with each capture, and named when an ablation cannot change anything."""

import numpy as np

from core.ablation import Ablation


def test_dead_fc1_neurons_match_an_independent_relu(session, dataset):
    activity = session.unit_activity("fc1")
    relu3 = session.adapter.run(np.asarray(dataset.inputs), capture=("relu3",))
    never = np.flatnonzero((relu3.activations["relu3"] > 0).sum(axis=0) == 0)
    assert activity.activation == "relu3"
    assert activity.dead == tuple(int(u) for u in never)
    assert len(activity.dead) == 45  # of 64: why fc1 ablations often show +0.0 points


def test_ablating_a_dead_unit_says_why_nothing_changed(session):
    dead = session.unit_activity("fc1").dead[0]
    live = next(u for u in range(64) if u not in session.unit_activity("fc1").dead)
    for mode in ("zero", "mean"):
        result = session.evaluate((Ablation("fc1", (dead,), mode),))
        assert result.delta == 0 and result.dead == (f"fc1:{dead} never fire after relu3",)
    assert session.evaluate((Ablation("fc1", (live, dead)),)).dead == ()


def test_capture_carries_the_dead_units_of_its_site(session, dataset):
    capture = session.capture(dataset.inputs[0], ["conv1", "fc2"])
    assert capture.dead["conv1"] == session.unit_activity("conv1").dead
    assert "fc2" not in capture.dead  # no rectifier after the logits
