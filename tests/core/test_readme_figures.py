"""Every figure the README quotes is measured here on the shipped models and data
(issue #12): a retrain or a change that moves one fails, and so does a README edit
that quotes a figure no test measures (the text is checked for each figure too)."""

from pathlib import Path

import numpy as np
import pytest

from core.ablation import Ablation
from core.datasets import digits_split
from core.session import Session

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _quoted(*texts: str) -> None:
    for text in texts:
        assert text in README, f"the README no longer says {text!r}: update this test"


@pytest.fixture(scope="module")
def induction() -> Session:
    s = Session()
    s.open_model("induction_transformer")
    return s


def test_digits_data_and_cnn(session):
    _quoted("1,797 8x8 images", "359 held-out digits", "38,282 parameters",
            "99.2 % on the 359 held-out digits")
    assert len(digits_split("train")[1]) + len(digits_split("eval")[1]) == 1797
    result = session.evaluate()
    assert result.n == 359
    assert f"{100 * result.score:.1f}" == "99.2"
    assert f"{session.info.n_params:,}" == "38,282"


def test_the_notebook_example(session):
    _quoted('Ablation("conv1", (5,))]).score)         # 0.955')
    assert f"{session.evaluate([Ablation('conv1', (5,))]).score:.3f}" == "0.955"
    capture = session.capture(session.sample(3).model_input, ["conv2"])
    assert capture.activations["conv2"].shape == (32, 8, 8)


def test_the_induction_circuit(induction):
    _quoted("36,892 parameters", "(score 0.58)", "from 100 % to 51 %", "(0.69–0.92)",
            "any one off costs at most 8\npoints (rounded), all four off leave 7 %")
    assert f"{induction.info.n_params:,}" == "36,892"
    base = induction.evaluate().score
    assert f"{100 * base:.0f}" == "100"
    scores = induction.head_scores()
    assert f"{scores.previous_token[0][2]:.2f}" == "0.58"
    assert int(np.argmax(scores.previous_token[0])) == 2  # L0H2 is the one
    off = induction.evaluate([Ablation("block0.attn.heads", (2,))]).score
    assert f"{100 * off:.0f}" == "51"
    layer1 = scores.induction[1]
    assert (f"{layer1.min():.2f}", f"{layer1.max():.2f}") == ("0.69", "0.92")
    for head in range(4):
        one = induction.evaluate([Ablation("block1.attn.heads", (head,))]).score
        assert round(100 * (base - one)) <= 8
    four = induction.evaluate([Ablation("block1.attn.heads", (0, 1, 2, 3))]).score
    assert f"{100 * four:.0f}" == "7"


def test_dead_fc1_neurons(session):
    _quoted("45 of the 64\n  `fc1` neurons")
    assert len(session.unit_activity("fc1").dead) == 45


def test_smollm_figures():
    """The README's SmolLM2 section (the heads' figures are asserted by
    tests/gui/test_next_token_view.py, which lesson 5 quotes too)."""
    import json

    from core.paths import resource_path
    from core.zoo import smollm

    if not smollm.available():
        pytest.skip("the smollm extra is not installed")
    from core import lm_tasks

    _quoted("134,515,008 parameters", "49,152-piece", "from 72 % to about 48 %",
            "below 20 %", "(16 repeated random sequences)", "(40 name-mover prompts",
            "at least 90 % right", "3.5 kB of\n  plain English", "seven bundled pairs",
            "270 heads")
    s = Session()
    info = s.open_model("smollm2-135m")
    assert f"{info.n_params:,}" == "134,515,008"
    assert len(info.class_names) == 49152 and info.dataset_size == 16
    assert f"{100 * s.evaluate().score:.0f}" == "72"
    names = lm_tasks.dataset("smollm2-135m", "names")
    assert len(names) == 40
    text = resource_path("data", "smollm_text.txt").read_bytes()
    assert 3400 <= len(text) < 3600
    pairs = json.loads(resource_path("data", "patching_examples.json").read_text())
    assert len(pairs["examples"]) == 7
    heads = sum(i.n_units for i in info.layers if i.name.endswith(".attn.heads"))
    assert heads == 270
