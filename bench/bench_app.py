"""The app as users run it (issue #10), through the compute process:

1. cancel latency (p50/p95) of a long cooperative job — an evaluation over 10,000
   examples of "your own data";
2. time from Cancel to a usable app when the framework call never returns (the
   watchdog replaces the process and reopens the model), against the time the same
   machine takes to start a compute process and open the model (the baseline);
3. the largest gap between GUI event-loop ticks while jobs run;
4. Quit (SIGTERM) mid-job: exit code and seconds to exit;
5. peak resident memory of the compute process and its sandbox children while refusing
   each memory-hostile file, above the app's idle size.

    python -m bench.bench_app          (never while other work loads the machine)
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.ablation import Ablation  # noqa: E402
from core.errors import Cancelled, MechscopeError  # noqa: E402
from core.jobs import CancelToken  # noqa: E402
from core.remote import RemoteSession  # noqa: E402


def _big_data(folder: Path, n: int = 10_000) -> Path:
    from core.datasets import load_digits

    digits = load_digits("eval")
    pick = np.arange(n) % len(digits)
    path = folder / "big.npz"
    np.savez(path, x=np.asarray(digits.inputs)[pick], y=np.asarray(digits.labels)[pick])
    return path


def cancel_latency(remote: RemoteSession, rounds: int = 20) -> list[float]:
    rng = np.random.default_rng(0)
    latencies = []
    for i in range(rounds):
        token = CancelToken()
        delay = float(rng.uniform(0.05, 0.3))
        stamp = {}

        def cancel() -> None:
            stamp["at"] = time.perf_counter()
            token.cancel()

        timer = threading.Timer(delay, cancel)
        timer.start()
        try:  # a new ablation each round, so nothing is cached
            remote.evaluate((Ablation("conv1", (i % 16,), "mean"),), token=token)
        except Cancelled:
            latencies.append(time.perf_counter() - stamp["at"])
        timer.cancel()
    return latencies


def hang_recovery() -> tuple[float, float]:
    """(Cancel → next call answered with the model reopened, cold start + open)."""
    start = time.perf_counter()
    remote = RemoteSession(serves="tests.fakes.hanging_session:HangingSession")
    remote.open_model("digits_cnn")
    cold = time.perf_counter() - start
    token, stamp = CancelToken(), {}

    def click() -> None:
        stamp["at"] = time.perf_counter()
        token.cancel()

    threading.Timer(0.3, click).start()
    try:
        remote.evaluate((Ablation("conv1", (1,)),), token=token)
    except MechscopeError:
        pass
    remote.evaluate((Ablation("conv2", (1,)),)[:0])  # the reopened model answers
    usable = time.perf_counter() - stamp["at"]
    remote.close()
    return usable, cold


def event_loop_gap(data: Path) -> float:
    """Largest gap (s) between 5 ms timer ticks in a real window while it opens the
    model, evaluates 10,000 examples of the user's data and toggles units."""
    code = f"""
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, {str(ROOT)!r})
from core.remote import RemoteSession
remote = RemoteSession()
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from gui.app import configure_pyqtgraph
from gui.main_window import MainWindow
app = QApplication([])
configure_pyqtgraph()
w = MainWindow(remote)
w.show()
gaps, last, step_of = [], [time.perf_counter()], [0]
per_step = {{}}
def tick():
    now = time.perf_counter(); gaps.append(now - last[0]); last[0] = now
    per_step[step_of[0]] = max(per_step.get(step_of[0], 0), gaps[-1])
t = QTimer(); t.timeout.connect(tick); t.start(5)
wb = w.workbench
steps = [lambda: wb.open_model("digits_cnn"), lambda: wb.open_file({str(data)!r}),
         lambda: wb.toggle_unit("conv1", 3), lambda: wb.toggle_unit("conv2", 5),
         lambda: wb.select_layer("conv2"), lambda: wb.toggle_unit("fc1", 7)]
def advance(busy=False):
    if busy or w.worker.busy: return
    if not steps:
        print("per step", {{k: round(v * 1000) for k, v in per_step.items()}}, file=sys.stderr)
        gaps.pop(0); print(max(gaps[5:])); w.close(); app.quit(); return
    step_of[0] += 1
    steps.pop(0)()
w.worker.busy_changed.connect(lambda b: QTimer.singleShot(0, lambda: advance(b)))
QTimer.singleShot(0, advance)
app.exec()
remote.close()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    steps = [line for line in out.stderr.splitlines() if line.startswith("per step")]
    print("  " + (steps[-1] if steps else out.stderr[-500:]))
    return float(out.stdout.strip().splitlines()[-1])


def quit_mid_job(data: Path, home: Path) -> tuple[int, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home),
               XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
    proc = subprocess.Popen([sys.executable, "main.py", str(data)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = home / "data" / "Mechscope" / "mechscope.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "ready" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    start = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    return code, time.perf_counter() - start


def _tree_rss(pid: int) -> int:
    """Proportional resident bytes (PSS) of ``pid`` and all its descendants: a forked
    sandbox shares its parent's pages, which plain RSS would count twice."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f
                              if line.startswith("Pss:"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total


def memory_cases(remote: RemoteSession, folder: Path) -> list[tuple[str, float, str]]:
    from tests.hostile import data_corpus, tricks
    from tests.hostile.corpus import _digits_state

    files = {"expanded.pt": tricks.expanded(_digits_state()),
             "deflate_bomb.pt": tricks.deflate_bomb()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    data_dir = folder / "data"
    data_dir.mkdir()
    data_corpus.build_data(data_dir)
    data_corpus.build_images(data_dir)
    cases = [folder / n for n in files] + [
        data_dir / n for n in ("huge_claim.npz", "needle.png", "huge.png", "long_field.csv")
        if (data_dir / n).exists()]
    idle = _tree_rss(remote.pid)
    rows = []
    for path in cases:
        peak, done = [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(remote.pid))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            remote.open_file(str(path))
            outcome = "OPENED"
        except MechscopeError as exc:
            outcome = str(exc)[:70]
        done.set()
        sampler.join()
        rows.append((path.name, (peak[0] - idle) / 1024 ** 2, outcome))
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = _big_data(folder)
        remote = RemoteSession()
        remote.open_model("digits_cnn")
        remote.use_dataset(str(data))
        lat = cancel_latency(remote)
        p50, p95 = statistics.median(lat), float(np.percentile(lat, 95))
        print(f"cancel latency, evaluation of 10,000 examples ({len(lat)} cancels): "
              f"p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms (target p95 <= 200 ms)")
        remote.open_model("digits_cnn")
        rows = memory_cases(remote, folder)
        remote.close()
        print("peak memory above idle while refusing (compute process + sandboxes; "
              "target <= 200 MB):")
        for name, mb, outcome in rows:
            print(f"  {name:<18} {mb:7.1f} MB  {outcome}")
        usable, cold = hang_recovery()
        print(f"framework call that never returns: Cancel -> usable in {usable:.2f} s "
              f"(target <= 3 s); baseline: a cold compute process + open takes {cold:.2f} s "
              f"= {usable / cold:.2f}x")
        gap = event_loop_gap(data)
        print(f"largest GUI event-loop gap during jobs: {1000 * gap:.0f} ms "
              "(target <= 100 ms)")
        code, seconds = quit_mid_job(data, folder / "home")
        print(f"quit mid-job: exit code {code} after {seconds:.2f} s (target 0 within 3 s)")


if __name__ == "__main__":
    main()
