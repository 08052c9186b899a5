"""The head-importance shortcut of a language model equals one evaluate() per head, and
head scores captured in one pass equal the per-site path (on a few rows of each task, to
keep the suite fast)."""

from dataclasses import replace

import numpy as np
import pytest

from core.zoo import smollm

pytestmark = pytest.mark.skipif(not smollm.available(), reason="the [smollm] extra is absent")

from core import lm_tasks  # noqa: E402
from core.ablation import Ablation  # noqa: E402
from core.analysis import lm_head_importance  # noqa: E402
from core.analysis.attention import head_scores  # noqa: E402
from core.analysis.cache import ActivationCache  # noqa: E402
from core.analysis.evaluate import Evaluator  # noqa: E402

ROWS = 4
#: Losses: the shortcut adds the same terms in other batch shapes (float32 rounding).
LOSS_TOL = 1e-4


@pytest.fixture(scope="module")
def adapter():
    from core.zoo.loading import open_zoo

    return open_zoo("smollm2-135m")


def _few(task: str):
    ds = lm_tasks.dataset("smollm2-135m", task)
    return replace(ds, inputs=ds.inputs[:ROWS], labels=ds.labels[:ROWS],
                   groups=ds.groups[:ROWS], texts=ds.texts[:ROWS])


def _evaluator(adapter, task: str) -> Evaluator:
    return Evaluator(adapter, _few(task), ActivationCache(1 << 28))


def test_only_llama_like_models_take_the_shortcut(adapter):
    from core.zoo.loading import open_zoo

    assert lm_head_importance.supports(_evaluator(adapter, "names"))
    tiny = open_zoo("induction_transformer")
    from core.datasets import load_induction

    assert not lm_head_importance.supports(Evaluator(tiny, load_induction(),
                                                     ActivationCache(1 << 20)))


@pytest.mark.parametrize("task, mode, layers", [
    ("induction", "zero", (0, 29)),    # the first block resumes from the embedding
    ("induction", "mean", (22, 29)),
    ("names", "zero", (25,)),
    ("names", "mean", (0, 27)),
])
def test_shortcut_equals_evaluate_per_head(adapter, task, mode, layers):
    ev = _evaluator(adapter, task)
    sweeps = lm_head_importance.head_importance(ev, mode, layers=layers)
    assert [s.site for s in sweeps] == [f"block{i}.attn.heads" for i in layers]
    for sweep in sweeps:
        assert sweep.units == tuple(range(9)) and sweep.mode == mode
        assert sweep.baseline_score == ev.evaluate().score
        for head in (0, 4, 8):
            direct = ev.evaluate([Ablation(sweep.site, (head,), mode)])
            assert sweep.score[head] == direct.score
            assert abs(sweep.loss[head] - direct.loss) < LOSS_TOL


def test_close_calls_are_rescored_by_the_direct_path(adapter, monkeypatch):
    # Every answer a close call: each one recomputed as evaluate() computes it.
    monkeypatch.setattr(lm_head_importance, "CLOSE_CALL", 1e9)
    ev = _evaluator(adapter, "names")
    (sweep,) = lm_head_importance.head_importance(ev, "zero", layers=(29,))
    for head in range(9):
        direct = ev.evaluate([Ablation(sweep.site, (head,), "zero")])
        assert sweep.score[head] == direct.score
        assert abs(sweep.loss[head] - direct.loss) < 1e-6


def test_one_pass_captures_equal_the_per_site_path(adapter):
    sites = ("block0.attn.pattern", "block14.attn.pattern", "block29.attn.pattern")
    together = _evaluator(adapter, "induction").site_outputs(sites)
    alone = _evaluator(adapter, "induction")
    ds = alone.dataset
    for site in sites:
        np.testing.assert_array_equal(together[site], alone.site_output(site))
    valid = np.ones(ds.inputs.shape, bool)
    a = head_scores(together, ds.inputs, valid)
    b = head_scores({s: alone.site_output(s) for s in sites}, ds.inputs, valid)
    np.testing.assert_array_equal(a.induction, b.induction)
