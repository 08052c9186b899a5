"""How long a unit page takes to paint once its layer's index exists (issue #13: target
≤ 200 ms), through the compute process as users run it, in the real window (offscreen):

    python -m bench.bench_unit_page [--units 12]

Opens conv2's page once (building the index), then steps Next through the layer and
times each step from the request to the page painted (the ``shown`` signal, then the
paint events it queued: the compute process's answer — the unit's examples and the
per-class effect of switching it off, one evaluation — plus the drawing), and the
drawing alone. For scale, the same run times a plain layer repaint: selecting
another example (capture in the compute process, channel grid redrawn). Not a test:
nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.remote import RemoteSession  # noqa: E402
from gui.app import configure_pyqtgraph  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


def _wait(signal, timeout_ms: int = 60_000) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(loop.quit)


def _idle(window: MainWindow) -> None:
    while window.worker.busy:
        QApplication.processEvents()
        time.sleep(0.005)
    QApplication.processEvents()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=12)
    args = parser.parse_args()
    app = QApplication([])
    configure_pyqtgraph()
    remote = RemoteSession()
    window = MainWindow(remote)
    window.resize(1440, 900)
    window.workbench.layer = "conv2"
    window.show()
    window.workbench.open_model("digits_cnn")
    _wait(window.accuracy_panel.updated)
    _idle(window)
    pages = window.unit_pages
    pages.open("conv2", 0)
    _wait(pages.shown)
    _idle(window)
    steps = []
    for unit in range(1, args.units + 1):
        start = time.perf_counter()
        pages.open("conv2", unit)
        _wait(pages.shown)
        QApplication.processEvents()  # the paint the new page queued
        steps.append(time.perf_counter() - start)
        _idle(window)
    paints = []
    info, page = window.workbench.info, pages.page
    for _ in range(args.units):  # the window's share: drawing a page it already has
        start = time.perf_counter()
        pages.view.show_page(page, info.class_names, info.dataset_size, False, True,
                             "conv2 channel")
        QApplication.processEvents()
        paints.append(time.perf_counter() - start)
    repaints = []
    for index in range(1, args.units + 1):
        start = time.perf_counter()
        window.workbench.select_sample(index)
        _wait(window.workbench.capture_ready)
        QApplication.processEvents()
        repaints.append(time.perf_counter() - start)
        _idle(window)
    page_ms = 1e3 * statistics.median(steps)
    repaint_ms = 1e3 * statistics.median(repaints)
    print(f"unit page, index built (median of {len(steps)}):  {page_ms:7.1f} ms   "
          f"worst {1e3 * max(steps):7.1f} ms   (target <= 200 ms)")
    print(f"  of which drawing the page in the window:  {1e3 * statistics.median(paints):7.1f} ms")
    print(f"another example, layer view repaint:        {repaint_ms:7.1f} ms   "
          f"page / repaint {page_ms / repaint_ms:5.2f}")
    window.close()
    remote.close()
    app.quit()


if __name__ == "__main__":
    main()
