"""Accuracy, loss and per-class accuracy of a model under a set of ablations.

The baseline is computed once per model + dataset. For an ablation, the unablated output
of the earliest ablated layer over the whole eval set is cached once; each toggle then
re-runs only the layers downstream of it (see ``bench/bench_workbench.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from core.ablation import Ablation
from core.analysis.cache import ActivationCache
from core.datasets import Dataset
from core.jobs import CancelToken, report
from core.kinds import ModelKind
from core.model import ModelAdapter

# Large enough that the shipped eval split is one batch (a toggle re-run costs
# ~5 ms, so cancel latency stays far below 200 ms); small enough for steady progress
# on a user's bigger dataset.
BATCH = 512
#: Rows (replicas x examples) per batched sweep pass: bounds its memory.
SWEEP_ROWS = 8192
#: A sweep's answer is a close call when its two best logits lie within this fraction
#: (of 1 + the top logit's size) of each other: float rounding could flip it.
CLOSE_CALL = 1e-4


@dataclass(frozen=True)
class EvalResult:
    """Accuracy over a dataset with and without the ablations.

    Attributes
    ----------
    ablations : tuple of Ablation
    n : int
        Number of scored answers (examples, or positions for next-token tasks).
    score, loss : float
        With the ablations: the ``metric`` — the fraction correct ("accuracy"), or for
        an embedding model the mean cosine similarity to the intact output ("cosine")
        — and the mean cross-entropy in nats (1 − cosine for embeddings).
    per_group : (G,) float64 ndarray
        Accuracy per group (per class for classifiers) with the ablations; NaN for a
        group with no examples.
    baseline_score, baseline_loss : float
    baseline_per_group : (G,) float64 ndarray
    group_names : tuple of str
    group_label : str
        What the groups are ("class", "next letter within the repeat").
    unchanged : tuple of str
        Ablations that changed no value on any input (the self-check).
    resumed_from : str or None
        Layer the forward pass restarted from, ``None`` for a full pass.
    """

    ablations: tuple[Ablation, ...]
    n: int
    score: float
    loss: float
    per_group: np.ndarray
    baseline_score: float
    baseline_loss: float
    baseline_per_group: np.ndarray
    group_names: tuple[str, ...]
    group_label: str
    unchanged: tuple[str, ...] = ()
    resumed_from: Optional[str] = None
    #: "accuracy" (fraction right) or "cosine" (similarity to the intact output).
    metric: str = "accuracy"
    #: Unit ablations that cannot change anything: the units never fire after their
    #: rectifier on this dataset ("fc1:3 never fire after relu3").
    dead: tuple[str, ...] = ()

    @property
    def delta(self) -> float:
        return self.score - self.baseline_score


@dataclass(frozen=True)
class Sweep:
    """Each unit of one site ablated alone.

    ``score``/``loss``: (U,) float64, in the order of ``units``; ``score`` is the
    evaluation's ``metric`` (accuracy, or cosine similarity for embedding models).
    """

    site: str
    units: tuple[int, ...]
    mode: str
    score: np.ndarray
    loss: np.ndarray
    baseline_score: float


def _cosine_scores(out: np.ndarray, base: np.ndarray) -> tuple[float, float, np.ndarray]:
    """For embedding models: cosine similarity of each example's output to the intact
    model's (1 = unchanged). "Accuracy" is its mean, "loss" 1 minus it, one group per
    example."""
    num = (out * base).sum(-1)
    den = np.linalg.norm(out, axis=-1) * np.linalg.norm(base, axis=-1)
    cos = num / np.maximum(den, 1e-12)
    return float(cos.mean()), float(1 - cos.mean()), cos.astype(np.float64)


def _scores(logits: np.ndarray, dataset: Dataset) -> tuple[float, float, np.ndarray]:
    """Accuracy, mean cross-entropy and per-group accuracy over the scored answers.

    ``logits``: (N, K) for a classifier or (N, T, K) per position; positions whose label
    is negative are not scored. A model may know fewer classes than the dataset (a
    3-class model on the ten digits): an answer it has no output for counts as wrong,
    and is left out of the loss, whose cross-entropy would be infinite — the loss is
    the mean over the answers the model can give (NaN when it can give none).
    """
    labels, groups = dataset.labels.reshape(-1), dataset.groups.reshape(-1)
    logits = logits.reshape(len(labels), -1)
    scored = labels >= 0
    logits, labels, groups = logits[scored], labels[scored], groups[scored]
    k = logits.shape[1]
    known = labels < k
    shifted = logits[known] - logits[known].max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(log_probs)), labels[known]].mean()) \
        if known.any() else float("nan")
    correct = (logits.argmax(axis=1) == labels) & known
    per_group = np.array([correct[groups == g].mean() if (groups == g).any() else np.nan
                          for g in range(len(dataset.group_names))])
    return float(correct.mean()), loss, per_group


class _ScoredAnswers:
    """The scored answers of a stack of outputs (U, N, ..., K), class-major: a sweep
    scores many replicas, and numpy reduces over a short last axis slowly, over a
    long one fast."""

    def __init__(self, outs: np.ndarray, dataset: Dataset) -> None:
        labels = dataset.labels.reshape(-1)
        scored = np.flatnonzero(labels >= 0)
        self.n_units, self.n = len(outs), outs.shape[1]
        self.k = outs.shape[-1]
        self.labels = labels[scored]
        #: The example each scored answer belongs to.
        self.example = scored // (len(labels) // self.n)
        flat = outs.reshape(self.n_units, len(labels), self.k)
        #: (U, S, K) and (K, U, S): one contiguous row of answers per class.
        self._scored = scored
        self.answers = np.take(flat, scored, axis=1)
        self.logits = np.ascontiguousarray(self.answers.transpose(2, 0, 1))
        self._top: Optional[tuple[np.ndarray, np.ndarray]] = None

    def update(self, unit: int, out: np.ndarray) -> None:
        """Replica ``unit``'s outputs are now ``out`` (N, ..., K)."""
        flat = out.reshape(-1, self.k)
        self.answers[unit] = flat[self._scored]
        self.logits[:, unit] = self.answers[unit].T
        self._top = None

    def _best(self) -> tuple[np.ndarray, np.ndarray]:
        """The top logit of each answer and the first class that has it (argmax)."""
        if self._top is not None:
            return self._top
        self._top = self._first_best()
        return self._top

    def _first_best(self) -> tuple[np.ndarray, np.ndarray]:
        best = self.logits.max(axis=0)
        if np.isnan(best).any():  # argmax's own rules for NaN
            return best, self.logits.argmax(axis=0)
        first = np.full(best.shape, self.k, np.int64)
        for j in range(self.k - 1, -1, -1):
            first[self.logits[j] == best] = j
        return best, first

    def close_calls(self) -> np.ndarray:
        """(U, N) bool: the examples with an answer whose top-2 margin is a close call
        (see :data:`CLOSE_CALL`)."""
        close = np.zeros((self.n_units, self.n), bool)
        if self.k < 2 or not self.logits.size:
            return close
        best = self.logits.max(axis=0)
        # A close call: some other class within the margin of the best one.
        near = (self.logits >= best - CLOSE_CALL * (1 + np.abs(best))).sum(axis=0) >= 2
        for i in np.flatnonzero(near.any(axis=1)):
            close[i, self.example[near[i]]] = True
        return close

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_scores`' accuracy and loss of each replica."""
        known = self.labels < self.k
        if not len(self.labels):
            return np.full(self.n_units, np.nan), np.full(self.n_units, np.nan)
        best, first = self._best()
        correct = (first == self.labels) & known
        if known.any():
            # The loss exactly as _scores computes it, answer-major, all replicas at once.
            every = known.all()
            logits = (self.answers if every else self.answers[:, known]).reshape(-1, self.k)
            # (A maximum is exact in any order: the class-major one, which is fast.)
            top = (best if every else best[:, known]).reshape(-1, 1)
            shifted = logits - top
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            picked = log_probs[np.arange(len(log_probs)),
                               np.tile(self.labels[known], self.n_units)]
            loss = -picked.reshape(self.n_units, -1).mean(axis=1).astype(np.float64)
        else:
            loss = np.full(self.n_units, np.nan)
        return correct.mean(axis=1), loss


class Evaluator:
    """Evaluates one adapter on one dataset, caching what toggles can reuse."""

    def __init__(self, adapter: ModelAdapter, dataset: Dataset, cache: ActivationCache) -> None:
        self.adapter = adapter
        self.dataset = dataset
        self._cache = cache
        self._order = {info.name: i for i, info in enumerate(adapter.layers())}
        self._baseline: Optional[np.ndarray] = None
        self._means: dict[str, np.ndarray] = {}

    def baseline_logits(self, token: Optional[CancelToken] = None) -> np.ndarray:
        """(N, K) float32 logits of the unablated model over the dataset."""
        if self._baseline is None:
            self._baseline = self._batched(
                lambda lo, hi: self.adapter.run(self.dataset.inputs[lo:hi]).outputs,
                token, "baseline")
        return self._baseline

    def site_output(self, site: str, token: Optional[CancelToken] = None) -> np.ndarray:
        """(N, *shape) float32 unablated output of ``site`` over the dataset (cached)."""
        key = f"{self.adapter.name}/{self.dataset.name}/{site}"
        cached = self._cache.get(key)
        if cached is None:
            cached = self._batched(
                lambda lo, hi: self.adapter.run(self.dataset.inputs[lo:hi], capture=(site,),
                                                stop_after=site).activations[site],
                token, f"caching {site}")
            self._cache.put(key, cached)
        return cached

    def site_outputs(self, sites: Sequence[str],
                     token: Optional[CancelToken] = None) -> dict[str, np.ndarray]:
        """:meth:`site_output` of many sites, the missing ones captured together in one
        forward pass over the dataset (stopped after the last of them): thirty
        attention patterns cost one pass, not thirty partial ones."""
        keys = {site: f"{self.adapter.name}/{self.dataset.name}/{site}" for site in sites}
        found = {site: self._cache.get(key) for site, key in keys.items()}
        missing = tuple(site for site, arr in found.items() if arr is None)
        if missing:
            last = max(missing, key=lambda s: self._order.get(s, -1))
            captured = {site: [] for site in missing}

            def step(lo: int, hi: int) -> np.ndarray:
                acts = self.adapter.run(self.dataset.inputs[lo:hi], capture=missing,
                                        stop_after=last).activations
                for site in missing:
                    captured[site].append(acts[site])
                return np.zeros(hi - lo, np.int8)  # _batched's own result is not used

            self._batched(step, token, f"caching {len(missing)} layers")
            for site in missing:
                found[site] = np.concatenate(captured[site])
                self._cache.put(keys[site], found[site])
        return found

    def means(self, sites: Sequence[str], token: Optional[CancelToken] = None) -> dict:
        """Per-position dataset mean of each site's output: ``site -> (*shape) float32``."""
        for site in sites:
            if site not in self._means:
                self._means[site] = self.site_output(site, token).mean(axis=0)
        return {site: self._means[site] for site in sites}

    def evaluate(self, ablations: Sequence[Ablation] = (),
                 token: Optional[CancelToken] = None) -> EvalResult:
        ablations = tuple(ablations)
        ds = self.dataset
        base = self._score(self.baseline_logits(token), token)
        n = int((ds.labels >= 0).sum())
        metric = ds.kind.metric
        if not ablations:
            return EvalResult((), n, *base, *base, ds.group_names, ds.group_label,
                              metric=metric)
        logits, unchanged, resumed = self._ablated_logits(ablations, token)
        return EvalResult(ablations, n, *self._score(logits, token), *base, ds.group_names,
                          ds.group_label, unchanged, resumed, metric)

    def _score(self, out: np.ndarray, token: Optional[CancelToken] = None):
        if self.dataset.kind is ModelKind.EMBEDDING:
            return _cosine_scores(out, self.baseline_logits(token))
        return _scores(out, self.dataset)

    def _ablated_logits(self, ablations: tuple[Ablation, ...],
                        token: Optional[CancelToken]):
        first = min((a.site for a in ablations), key=lambda s: self._order.get(s, -1))
        means = self.means(sorted({a.site for a in ablations if a.mode == "mean"}), token)
        # Skipping or re-weighting a layer needs that layer to run again.
        layer_wide = any(a.site == first and a.whole_layer for a in ablations)
        resumed = self.adapter.resume_point(first, inclusive=not layer_wide)
        acts = self.site_output(resumed, token) if resumed else None
        per_batch: list[set[str]] = []

        def step(lo: int, hi: int) -> np.ndarray:
            if resumed:
                res = self.adapter.run_from(resumed, acts[lo:hi], ablations, means)
            else:
                res = self.adapter.run(self.dataset.inputs[lo:hi], ablations=ablations,
                                       means=means)
            per_batch.append(set(res.report.unchanged))
            return res.outputs

        logits = self._batched(step, token, "evaluating")
        # An ablation is "unchanged" only if it changed nothing in every batch.
        unchanged = set.intersection(*per_batch) if per_batch else set()
        return logits, tuple(sorted(unchanged)), resumed

    def sweep(self, site: str, units: Sequence[int], mode: str = "zero",
              token: Optional[CancelToken] = None) -> Sweep:
        """Ablate each unit of ``site`` alone, batched, with the same numbers as one
        :meth:`evaluate` per unit.

        An adapter that knows a shortcut (``sweep_needs``: the torch adapter on a
        sequential model) gets the cached intact outputs it asks for and computes only
        what each unit changes; otherwise the replicas of the eval set run through the
        model together, from the cached resume point when there is one. A shortcut
        adds up the same terms in another order, so the examples whose two best answers
        lie within rounding of each other are rescored by the direct path: accuracies
        equal :meth:`evaluate`'s exactly, losses to float rounding.
        """
        units = tuple(units)
        means = self.means([site], token) if mode == "mean" else {}
        resume = self.adapter.resume_point(site)
        source = self.site_output(resume, token) if resume else self.dataset.inputs
        base = self._sweep_baseline_score(token)
        needs_fn = getattr(self.adapter, "sweep_needs", None)
        needs = needs_fn(site, mode) if needs_fn is not None else None
        extra = {}
        if needs is not None:
            extra = {"cached": {name: self.site_output(name, token) for name in needs}}
        acc, loss = [], []
        per_chunk = max(1, SWEEP_ROWS // max(len(self.dataset), 1))
        for start in range(0, len(units), per_chunk):
            report(token, start / len(units), f"sweeping {site}: unit {start}/{len(units)}")
            chunk = units[start:start + per_chunk]
            outs = self.adapter.run_sweep(site, chunk, mode, means, source, resume, **extra)
            if self.dataset.kind is ModelKind.EMBEDDING:
                # No answer to flip: cosine similarities differ by rounding only.
                for out in outs:
                    right, lost, _ = self._score(out, token)
                    acc.append(right)
                    loss.append(lost)
                continue
            answers = self._rescore_close_calls(site, chunk, mode, means, outs, token)
            right, lost = answers.scores()
            acc.extend(right)
            loss.extend(lost)
        report(token, 1.0, f"sweeping {site}: done")
        return Sweep(site, units, mode, np.array(acc, np.float64), np.array(loss, np.float64),
                     base)

    def _sweep_baseline_score(self, token: Optional[CancelToken]) -> float:
        """The intact score, computed once per baseline (a sweep per layer asks)."""
        logits = self.baseline_logits(token)
        known = getattr(self, "_swept_baseline", None)
        if known is None or known[0] is not logits:
            known = (logits, self._score(logits, token)[0])
            self._swept_baseline = known
        return known[1]

    def _rescore_close_calls(self, site: str, units: tuple[int, ...], mode: str,
                             means: dict, outs: np.ndarray,
                             token: Optional[CancelToken]) -> _ScoredAnswers:
        """The answers of ``outs``, with the examples whose answer rounding could flip
        (top-2 margin within :data:`CLOSE_CALL` of the top logit) recomputed as
        :meth:`evaluate` computes them."""
        answers = _ScoredAnswers(outs, self.dataset)
        close = answers.close_calls()
        if not close.any():
            return answers
        outs = np.array(outs)
        resumed = self.adapter.resume_point(site, inclusive=True)
        acts = self.site_output(resumed, token) if resumed else None
        for i in np.flatnonzero(close.any(axis=1)):
            rows = np.flatnonzero(close[i])
            abl = (Ablation(site, (units[i],), mode),)
            if resumed:
                direct = self.adapter.run_from(resumed, acts[rows], abl, means).outputs
            else:
                direct = self.adapter.run(self.dataset.inputs[rows], ablations=abl,
                                          means=means).outputs
            outs[i, rows] = direct
            answers.update(i, outs[i])
        return answers

    def _batched(self, fn, token: Optional[CancelToken], what: str) -> np.ndarray:
        n = len(self.dataset)
        parts = []
        for lo in range(0, n, BATCH):
            report(token, lo / n, f"{what}: {lo}/{n}")
            parts.append(fn(lo, min(lo + BATCH, n)))
        report(token, 1.0, f"{what}: {n}/{n}")
        return np.concatenate(parts)
