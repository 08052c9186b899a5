"""Linear probes on every layer of the shipped digits CNN (issue #13), against one plain
forward over its eval set measured in the same run.

    python -m bench.bench_probes [--repeats 3] [--induction]

  capture of every layer's output over the eval set (one hooked forward)
  probe_layers over all layers: probe + shuffled-label control per layer, per-layer
  seconds and accuracies (held-out / shuffled / chance), total as a ratio of a forward
  --induction: the same for the induction transformer's two questions ("next letter",
  "in the repeated half")
Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from core.analysis.probes import layer_rows, probe_layers
from core.jobs import CancelToken
from core.runtime import tune_allocator
from core.session import Session


def _timed_probe(task, sites, rows, labels, examples):
    """(report, seconds per site, total seconds): per-site times from the progress
    reports, which come between sites."""
    stamps = []
    token = CancelToken(lambda fraction, text: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    report = probe_layers(task, sites, rows, labels, examples, token=token)
    total = time.perf_counter() - start
    return report, np.diff(stamps), total


def _print(report, per_site, total, forward_s):
    print(f"  {'layer':22s} {'dims':>5s} {'seconds':>8s} {'held-out':>9s} {'train':>6s} "
          f"{'shuffled':>9s}")
    for i, site in enumerate(report.sites):
        print(f"  {site:22s} {report.dims[i]:5d} {per_site[i]:8.3f} {report.held_out[i]:9.3f} "
              f"{report.train[i]:6.3f} {report.shuffled[i]:9.3f}")
    print(f"  chance {report.chance:.3f}; {report.n_train} train / {report.n_test} held-out rows")
    print(f"  all {len(report.sites)} layers {total:6.2f} s   ratio {total / forward_s:7.0f} "
          f"plain forwards")
    for note in report.notes:
        print(f"  note: {note}")


def _forward_s(session, repeats: int) -> float:
    x = torch.from_numpy(np.array(session.dataset.inputs))  # writable copy
    times = []
    with torch.inference_mode():
        session.adapter.model(x)  # warm-up
        for _ in range(max(repeats, 5)):
            start = time.perf_counter()
            session.adapter.model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _captured(session):
    layers = {info.name: info for info in session.adapter.layers()}
    start = time.perf_counter()
    run = session.adapter.run(np.asarray(session.dataset.inputs), capture=tuple(layers))
    return layers, run.activations, time.perf_counter() - start


def digits(session, repeats: int) -> None:
    session.open_model("digits_cnn")
    forward_s = _forward_s(session, 20)
    layers, acts, capture_s = _captured(session)
    labels = np.asarray(session.dataset.labels)
    print(f"digits CNN: {len(labels)} examples, {len(layers)} layers")
    print(f"  plain forward {forward_s * 1e3:8.2f} ms; capture of every layer "
          f"{capture_s * 1e3:8.2f} ms")
    runs = [_timed_probe("digit", list(layers),
                         lambda site: layer_rows(acts[site], layers[site].unit_axis),
                         labels, np.arange(len(labels))) for _ in range(repeats)]
    best = min(runs, key=lambda run: run[2])
    _print(*best, forward_s)
    print(f"  totals over {repeats} runs: " + ", ".join(f"{run[2]:.2f}" for run in runs) + " s")


def induction(session) -> None:
    session.open_model("induction_transformer")
    forward_s = _forward_s(session, 20)
    layers, acts, _ = _captured(session)
    targets = np.asarray(session.dataset.labels)
    n, length = targets.shape
    scored_e, scored_p = np.nonzero(targets >= 0)
    all_e, all_p = np.nonzero(np.ones((n, length), bool))
    all_e, all_p = all_e[all_p >= 1], all_p[all_p >= 1]
    tasks = {"next letter": (scored_e, scored_p, targets[scored_e, scored_p]),
             "in the repeated half": (all_e, all_p, (all_p >= 13).astype(np.int64))}
    print(f"induction transformer: {n} sequences of {length} tokens, {len(layers)} layers, "
          f"plain forward {forward_s * 1e3:.2f} ms")
    for task, (examples, positions, labels) in tasks.items():
        pairs = np.stack([examples, positions], axis=1)
        print(f" {task}:")
        _print(*_timed_probe(task, list(layers),
                             lambda site, pairs=pairs: layer_rows(
                                 acts[site], layers[site].unit_axis, pairs),
                             labels, examples), forward_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--induction", action="store_true")
    args = parser.parse_args()
    tuned = tune_allocator()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"allocator tuned: {tuned}")
    session = Session()
    digits(session, args.repeats)
    if args.induction:
        induction(session)


if __name__ == "__main__":
    main()
