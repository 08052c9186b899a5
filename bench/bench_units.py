"""The top-k index behind unit pages (issue #13), against one plain forward pass over
the evaluation set, in one run:

    python -m bench.bench_units [--repeats 20]

  per layer: building every unit's index from a cold cache (the layer's output is
  computed by one forward that stops after the layer, then reduced) and from the
  cached layer output (what a second unit page of the same layer costs), as ratios of
  a plain forward over the whole evaluation set; then the unit page itself (top-k and
  bottom-k, histogram, class means, effect) once the index exists.
The target: cold ≤ 1.2× a plain forward. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import paired_medians
from core.runtime import tune_allocator
from core.session import Session


def _median(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_model(name: str, repeats: int) -> None:
    session = Session()
    session.open_model(name)
    adapter, dataset = session.adapter, session.dataset
    inputs = torch.from_numpy(np.array(dataset.inputs))
    study = session._units
    sites = [i.name for i in adapter.layers() if i.n_units and not i.heads_site] + \
        sorted({i.heads_site for i in adapter.layers() if i.heads_site})

    def plain():
        with torch.inference_mode():
            adapter.model(inputs)

    print(f"\n{name}: {len(dataset)} examples, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'layer':24s} {'plain fwd':>10s} {'index cold':>11s} {'ratio':>6s} "
          f"{'index warm':>11s} {'ratio':>6s} {'page':>8s}")
    for site in sites:
        def cold(site=site):
            session._cache.clear()
            study._indices.clear()
            study.index(site)

        plain_s, cold_s = paired_medians(plain, cold, repeats)

        def warm(site=site):
            study._indices.clear()
            study.index(site)

        warm_s = _median(warm, repeats)
        study.index(site)
        session.unit_page(site, 0)  # the effect's evaluation is cached after this
        page_s = _median(lambda site=site: session.unit_page(site, 0), repeats)
        print(f"{site:24s} {plain_s * 1e3:8.2f}ms {cold_s * 1e3:9.2f}ms {cold_s / plain_s:6.2f} "
              f"{warm_s * 1e3:9.2f}ms {warm_s / plain_s:6.2f} {page_s * 1e3:6.1f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"allocator tuned: {tune_allocator()}")
    for name in ("digits_cnn", "induction_transformer"):
        bench_model(name, args.repeats)


if __name__ == "__main__":
    main()
