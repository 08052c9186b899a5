"""Workbench speed on the shipped digits CNN over its held-out split, in one run.

    python -m bench.bench_workbench [--repeats 50]

Prints medians and ratios against a plain-PyTorch forward measured here, now:
  capture of every layer vs plain forward            (target <= 1.10)
  one-toggle re-evaluation vs one full hooked forward (target <= 0.50)
Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import numpy as np
import torch

from bench.common import paired_medians, plain_vs_capture
from core.ablation import Ablation
from core.runtime import tune_allocator
from core.session import Session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--no-tune", action="store_true",
                        help="leave glibc's allocator as it is (the app tunes it)")
    args = parser.parse_args()
    tuned = False if args.no_tune else tune_allocator()
    session = Session()
    session.open_model("digits_cnn")
    adapter, dataset = session.adapter, session.dataset
    x_np = np.array(dataset.inputs)
    sites = [info.name for info in adapter.layers()]
    plain_s, capture_s = plain_vs_capture(adapter, x_np, sites, args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{len(dataset)} examples of {adapter.input_shape}, allocator tuned: {tuned}")
    print(f"plain forward                      {plain_s * 1e3:8.2f} ms")
    print(f"forward capturing all {len(sites):2d} layers    {capture_s * 1e3:8.2f} ms   "
          f"ratio {capture_s / plain_s:5.2f}  (target <= 1.10)")
    for site, unit in (("conv2", 3), ("fc1", 7), ("conv1", 5)):
        abl = (Ablation(site, (unit,)),)
        session.evaluate(abl)  # fills the baseline and the site cache once

        def hooked():
            adapter.run(x_np, ablations=abl)

        def toggle(unit=unit, site=site):
            session.evaluate((Ablation(site, (unit + 1,)),))

        hooked_s, toggle_s = paired_medians(hooked, toggle, args.repeats)
        print(f"toggle in {site:<6} re-evaluation     {toggle_s * 1e3:8.2f} ms   "
              f"ratio {toggle_s / hooked_s:5.2f} of one full hooked forward "
              f"({hooked_s * 1e3:.2f} ms; target <= 0.50)")


if __name__ == "__main__":
    main()
