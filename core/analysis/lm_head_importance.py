"""All heads of a language model switched off one at a time, in about the cost of a few
dozen forward passes instead of one per head (the shortcut is
:mod:`core.adapters.lm_heads`; this module holds it to :meth:`Evaluator.evaluate`'s
numbers).

Answers the shortcut flags as close calls (two best logits within rounding) are
recomputed by the direct path — the hooked run from the cached resume point that
``evaluate`` takes — so accuracies equal one ``evaluate`` per head exactly and losses
to float rounding.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from core.ablation import Ablation
from core.analysis.evaluate import CLOSE_CALL, Evaluator, Sweep
from core.jobs import CancelToken


def supports(evaluator: Evaluator) -> bool:
    """Whether the shortcut applies: a SmolLM-like torch model on a next-token task."""
    if evaluator.dataset.labels.ndim != 2:
        return False
    try:
        from core.adapters import lm_heads
    except ImportError:  # no torch: an ONNX-only install
        return False
    return lm_heads.supports(evaluator.adapter)


def head_importance(evaluator: Evaluator, mode: str = "zero",
                    token: Optional[CancelToken] = None,
                    layers: Optional[Sequence[int]] = None) -> tuple[Sweep, ...]:
    """One :class:`Sweep` per attention layer (``layers``: only these blocks, for
    tests and benchmarks), as :meth:`Evaluator.sweep` would return for each."""
    from core.adapters import lm_heads

    adapter, ds = evaluator.adapter, evaluator.dataset
    sites = lm_heads.heads_sites(adapter.model)
    if layers is not None:
        sites = tuple(sites[i] for i in layers)
    means = {}
    if mode == "mean":
        evaluator.site_outputs(sites, token)  # every layer's heads in one pass
        means = evaluator.means(sites, token)
    base = evaluator.evaluate((), token).baseline_score
    layers = lm_heads.sweep(adapter.model, np.asarray(ds.inputs), np.asarray(ds.labels),
                            mode, means, CLOSE_CALL, token, layers=layers)
    rows, cols = np.nonzero(ds.labels >= 0)
    sweeps = []
    for layer in layers:
        correct, log_prob = layer.correct.copy(), layer.log_prob.astype(np.float64)
        for head in np.flatnonzero(layer.close.any(axis=1)):
            _rescore(evaluator, layer.site, int(head), mode, means, rows, cols,
                     layer.close[head], correct[head], log_prob[head], token)
        n_heads = len(correct)
        sweeps.append(Sweep(layer.site, tuple(range(n_heads)), mode,
                            correct.mean(axis=1).astype(np.float64),
                            -log_prob.mean(axis=1), base))
    return tuple(sweeps)


def _rescore(evaluator: Evaluator, site: str, head: int, mode: str, means: dict,
             rows: np.ndarray, cols: np.ndarray, close: np.ndarray, correct: np.ndarray,
             log_prob: np.ndarray, token: Optional[CancelToken]) -> None:
    """The close-call answers of ``head`` (in place), computed as ``evaluate`` does:
    from the cached resume point, on the examples that hold them."""
    adapter = evaluator.adapter
    examples = np.unique(rows[close])
    resumed = adapter.resume_point(site, inclusive=True)
    abl = (Ablation(site, (head,), mode),)
    if resumed:
        acts = evaluator.site_output(resumed, token)
        outs = adapter.run_from(resumed, acts[examples], abl, means).outputs
    else:
        outs = adapter.run(evaluator.dataset.inputs[examples], ablations=abl,
                           means=means).outputs
    where = {int(e): i for i, e in enumerate(examples)}
    for a in np.flatnonzero(np.isin(rows, examples)):
        logits = outs[where[int(rows[a])], cols[a]]
        answer = evaluator.dataset.labels[rows[a], cols[a]]
        shifted = logits - logits.max()
        correct[a] = logits.argmax() == answer
        log_prob[a] = float(shifted[answer] - np.log(np.exp(shifted).sum()))
