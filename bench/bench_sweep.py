"""The per-unit importance sweep against what a TransformerLens or nnsight user writes:
a loop of hooked full forwards, one per unit, over the eval set, each scored.

    python -m bench.bench_sweep [--repeats 5] [--mode zero] [--threads N] [--only conv1,fc1]

For every layer of digits_cnn that has units and the heads of the induction
transformer: the median time of the loop (``adapter.run(inputs, ablations=(one unit,))``
then accuracy and loss) vs ``Evaluator.sweep`` over all units, their ratio and the path
the sweep took (``TorchAdapter.last_sweep_path``); then the sum over all layers.
Caches (site outputs, means, the baseline) are warm for both sides, as they are in the
window after the first sweep. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.common import paired_medians
from core.ablation import Ablation
from core.analysis.evaluate import _scores
from core.runtime import tune_allocator
from core.session import Session


def _rows(session: Session, sites, mode: str, repeats: int):
    adapter, dataset, evaluator = session.adapter, session.dataset, session._evaluator
    layers = {info.name: info for info in adapter.layers()}
    inputs = np.array(dataset.inputs)
    for site in sites:
        units = range(layers[site].n_units)
        means = evaluator.means([site]) if mode == "mean" else {}

        def loop():
            for u in units:
                out = adapter.run(inputs, ablations=(Ablation(site, (u,), mode),),
                                  means=means).outputs
                _scores(out, dataset)

        def sweep():
            evaluator.sweep(site, units, mode)

        loop_s, sweep_s = paired_medians(loop, sweep, repeats)
        yield site, len(units), loop_s, sweep_s, adapter.last_sweep_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mode", choices=("zero", "mean"), default="zero")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice); 1 on a busy machine")
    parser.add_argument("--only", default="",
                        help="comma-separated sites to time (default: all)")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = tune_allocator()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mode {args.mode}, allocator tuned: {tuned}")
    print(f"{'model':22s} {'site':20s} {'units':>5s} {'loop ms':>10s} {'sweep ms':>9s} "
          f"{'ratio':>7s}  path")
    total_loop = total_sweep = 0.0
    session = Session()
    for model in ("digits_cnn", "induction_transformer"):
        session.open_model(model)
        layers = session.adapter.layers()
        if model == "digits_cnn":
            sites = [i.name for i in layers if i.n_units > 0]
        else:
            sites = [i.name for i in layers if i.kind == "HeadOutputs"]
        sites = [site for site in sites if not only or site in only]
        if not sites:
            continue
        for site, n, loop_s, sweep_s, path in _rows(session, sites, args.mode, args.repeats):
            total_loop += loop_s
            total_sweep += sweep_s
            print(f"{model:22s} {site:20s} {n:5d} {loop_s * 1e3:10.1f} {sweep_s * 1e3:9.2f} "
                  f"{loop_s / sweep_s:6.1f}x  {path}")
    print(f"{'all layers':22s} {'':20s} {'':5s} {total_loop * 1e3:10.1f} "
          f"{total_sweep * 1e3:9.2f} {total_loop / total_sweep:6.1f}x")


if __name__ == "__main__":
    main()
