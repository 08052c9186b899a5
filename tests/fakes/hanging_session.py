"""A real session whose evaluation ends in a framework call that never returns and
never checks its token — what an ONNX ``Loop`` of 2**62 iterations does inside
onnxruntime. Served by the compute process in the watchdog tests."""

import time

from core.session import Session


class HangingSession(Session):
    """Opens and captures like :class:`Session`; ``evaluate`` with ablations hangs."""

    def evaluate(self, ablations=(), token=None):
        if not ablations:
            return super().evaluate(ablations, token)
        while True:  # deaf to cancellation, like a native call
            time.sleep(0.05)
