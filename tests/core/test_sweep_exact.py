"""The importance sweep gives the numbers of one evaluate() per unit, exactly.

Every entry of ``Evaluator.sweep`` is compared with ``Session.evaluate`` with that
single unit switched off: accuracy exactly equal, loss to 1e-5 (the shortcuts of
:mod:`core.adapters.torch_sweep` add the same terms in another order).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.ablation import Ablation
from core.adapters import torch_sweep
from core.analysis import evaluate as evaluate_module
from core.errors import AblationError, Cancelled
from core.jobs import CancelToken
from core.session import Session

DIGITS_SITES = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1",
                "relu3", "fc2")
#: The shortcut each site of the digits CNN must take (so it cannot silently fall
#: back to replicating the forward pass).
DIGITS_PATHS = {"conv1": "delta", "relu1": "delta", "pool1": "delta", "conv2": "delta",
                "relu2": "delta", "pool2": "delta", "flatten": "delta",
                "fc1": "closed form", "relu3": "closed form", "fc2": "exact"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Thousands of small evaluate() calls: on a shared machine, one thread keeps
    them from waiting on each other (8x faster under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _open(name: str) -> Session:
    s = Session()
    s.open_model(name)
    return s


@pytest.fixture(scope="module")
def digits() -> Session:
    return _open("digits_cnn")


@pytest.fixture(scope="module")
def induction() -> Session:
    return _open("induction_transformer")


@pytest.fixture(scope="module")
def lesson() -> Session:
    s = Session()
    s.lesson_start("mlp", seed=0)
    s.lesson_step(30)
    s.open_lesson_model()
    return s


def _n_units(s: Session, site: str) -> int:
    return next(i.n_units for i in s.adapter.layers() if i.name == site)


def _assert_equals_evaluate(s: Session, site: str, mode: str, units=None) -> str:
    units = tuple(range(_n_units(s, site))) if units is None else tuple(units)
    sweep = s._evaluator.sweep(site, units, mode)
    path = s.adapter.last_sweep_path
    assert sweep.units == units and sweep.mode == mode
    for unit, score, loss in zip(units, sweep.score, sweep.loss):
        single = s.evaluate((Ablation(site, (unit,), mode),))
        assert score == single.score, (site, mode, unit, path)
        assert loss == pytest.approx(single.loss, rel=1e-5, abs=1e-7), (site, mode, unit)
    assert sweep.baseline_score == s.evaluate().score
    return path


@pytest.mark.parametrize("mode", ["zero", "mean"])
@pytest.mark.parametrize("site", DIGITS_SITES)
def test_digits_every_unit_of_every_layer(digits, site, mode):
    path = _assert_equals_evaluate(digits, site, mode)
    assert path == DIGITS_PATHS[site]


@pytest.mark.parametrize("mode", ["zero", "mean"])
@pytest.mark.parametrize("site", ["block0.attn.heads", "block1.attn.heads"])
def test_induction_heads(induction, site, mode):
    path = _assert_equals_evaluate(induction, site, mode)
    # Layer 1's heads reach the logits linearly (out-projection, residual, unembed);
    # layer 0's change runs on through layer 1's attention.
    assert path == ("closed form" if site.startswith("block1") else "delta")


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_induction_sequence_features(induction, mode):
    # (T, F) sites with the unit on axis 1: the residual stream after block 1 (closed
    # form), and some of the embedding's features (the rest of the model runs).
    assert _assert_equals_evaluate(induction, "block1", mode) == "closed form"
    assert _assert_equals_evaluate(induction, "embed", mode, range(0, 64, 21)) == "channel"


def test_induction_nonlinear_site_replicates(induction):
    # qkv's change reaches the logits through softmax attention: no shortcut.
    assert induction.adapter.sweep_needs("block1.attn.qkv", "zero") is None
    assert _assert_equals_evaluate(induction, "block1.attn.qkv", "zero", (0, 70, 150)) \
        == "replicas"


@pytest.mark.parametrize("mode", ["zero", "mean"])
@pytest.mark.parametrize("site", ["flatten", "fc1", "relu1", "fc2"])
def test_lesson_mlp(lesson, site, mode):
    units = range(0, 256, 7) if site == "flatten" else None
    _assert_equals_evaluate(lesson, site, mode, units)
    assert lesson.adapter.last_sweep_path != "replicas"


def test_conv1_shortcut_matches_the_replicated_pass(digits):
    """The conv1 shortcut is taken (planned as a per-channel walk through relu1 and
    pool1, then conv2 by the channel's weights) and its outputs equal the replicas'."""
    adapter, evaluator = digits.adapter, digits._evaluator
    plan = adapter.sweep_plan("conv1")
    assert plan.path == "delta"
    assert [name for name, _ in plan.chain] == ["relu1", "pool1"]
    assert plan.mixer is adapter.model.conv2 and plan.base == "conv2"
    assert [name for name, _ in plan.rest] == ["relu2", "pool2", "flatten", "fc1",
                                                "relu3", "fc2"]
    cached = {n: evaluator.site_output(n) for n in plan.needs}
    source = evaluator.site_output("conv1")
    units = (0, 2, 5, 15)
    fast = adapter.run_sweep("conv1", units, "zero", {}, source, "conv1", cached=cached)
    assert adapter.last_sweep_path == "delta"
    slow = adapter.run_sweep("conv1", units, "zero", {}, source, "conv1")
    assert adapter.last_sweep_path == "replicas"
    assert fast.shape == slow.shape == (4, len(digits.dataset), 10)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)


def test_units_that_change_nothing_keep_the_baseline(digits):
    # A conv1 channel that never fires after relu1: zeroing it changes no example.
    evaluator = digits._evaluator
    relu1 = evaluator.site_output("relu1")
    dead = [c for c in range(16) if not relu1[:, c].any()]
    assert dead, "the shipped CNN has dead conv1 channels"
    cached = {n: evaluator.site_output(n) for n in digits.adapter.sweep_needs("conv1", "zero")}
    out = digits.adapter.run_sweep("conv1", dead, "zero", {}, evaluator.site_output("conv1"),
                                   "conv1", cached=cached)
    for row in out:
        np.testing.assert_array_equal(row, evaluator.baseline_logits())


def test_close_calls_are_rescored_by_the_direct_path(digits, monkeypatch):
    # Every answer counts as a close call: all of them come from the direct path.
    monkeypatch.setattr(evaluate_module, "CLOSE_CALL", 1e9)
    _assert_equals_evaluate(digits, "fc1", "mean", (0, 3, 63))
    _assert_equals_evaluate(digits, "conv1", "zero", (2, 4))


def test_sweep_reports_progress_and_can_be_cancelled(digits):
    seen = []
    token = CancelToken(lambda fraction, text: seen.append((fraction, text)))
    digits._evaluator.sweep("flatten", range(512), "zero", token)
    chunks = [t for _, t in seen if t.startswith("sweeping flatten: unit")]
    per_chunk = evaluate_module.SWEEP_ROWS // len(digits.dataset)
    assert len(chunks) == -(-512 // per_chunk) and seen[-1][0] == 1.0
    token = CancelToken(lambda fraction, text: token.cancel() if "unit 22" in text else None)
    with pytest.raises(Cancelled):
        digits._evaluator.sweep("flatten", range(512), "zero", token)


def test_bad_units_and_missing_means_raise(digits):
    evaluator = digits._evaluator
    cached = {n: evaluator.site_output(n) for n in digits.adapter.sweep_needs("conv2", "zero")}
    source = evaluator.site_output("conv2")
    with pytest.raises(AblationError, match="unit 40 does not exist"):
        digits.adapter.run_sweep("conv2", (1, 40), "zero", {}, source, "conv2", cached=cached)
    with pytest.raises(AblationError, match="No dataset mean"):
        digits.adapter.run_sweep("conv2", (1,), "mean", {}, source, "conv2", cached=cached)


def test_fast_max_pool_equals_the_module():
    from torch import nn

    x = torch.randn(3, 4, 9, 7)
    for pool in (nn.MaxPool2d(2), nn.MaxPool2d(3), nn.MaxPool2d((2, 3))):
        assert torch.equal(torch_sweep.max_pool(pool, x), pool(x))
    for pool in (nn.MaxPool2d(3, stride=1), nn.MaxPool2d(2, padding=1),
                 nn.MaxPool2d(2, ceil_mode=True)):
        assert torch_sweep.max_pool(pool, x) is None
    relu_pool = [nn.ReLU(), nn.MaxPool2d(2)]
    assert torch.equal(torch_sweep.run_rest(relu_pool, x)[0], relu_pool[1](relu_pool[0](x)))
