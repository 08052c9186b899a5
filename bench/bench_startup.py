"""Start-up: time from launching ``python main.py`` to the window's first paint and to
"model ready", against ``python -c "import torch"`` measured in the same run.

    python -m bench.bench_startup [--runs 5] [--exe dist/Mechscope/Mechscope]

Targets (issue #4): first paint <= 1.5 s from source; model ready <= 1.2x import torch.
Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_torch() -> float:
    start = time.time()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.time() - start


def _launch(cmd: list[str]) -> tuple[float, float]:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    start = time.time()
    out = subprocess.run(cmd + ["--timing"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    stamps = dict(line.split() for line in out.splitlines() if line.startswith(("first", "model")))
    return float(stamps["first-paint"]) - start, float(stamps["model-ready"]) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--exe", help="also time a built executable")
    args = parser.parse_args()
    _import_torch(), _launch([sys.executable, "main.py"])  # warm the file cache
    targets = [("python main.py", [sys.executable, "main.py"])]
    if args.exe:
        targets.append((args.exe, [str(Path(args.exe).resolve())]))
    torch_s = statistics.median(_import_torch() for _ in range(args.runs))
    print(f"python -c 'import torch'      {torch_s:6.2f} s")
    for name, cmd in targets:
        runs = [_launch(cmd) for _ in range(args.runs)]
        paint = statistics.median(r[0] for r in runs)
        ready = statistics.median(r[1] for r in runs)
        print(f"{name:<30}first paint {paint:5.2f} s (target <= 1.5)   model ready "
              f"{ready:5.2f} s = {ready / torch_s:4.2f}x import torch (target <= 1.2)")


if __name__ == "__main__":
    main()
