"""Mechscope from Python: look inside your own ``torch.nn.Module``, from a script or a
notebook.

    import mechscope
    mechscope.show(model, x_test, y_test)

:func:`show` opens the Mechscope window on the live module, evaluated on your arrays;
:func:`digits` gives the shipped handwritten digits, to try it offline. The work is
done by :mod:`core.live` (the model and data) and :mod:`gui.live_window` (the window).
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["digits", "show"]


def show(model, inputs, labels, class_names: Optional[Sequence[str]] = None, *,
         layer: Optional[str] = None, title: Optional[str] = None, block: bool = True):
    """Open the Mechscope window on ``model``, evaluated on ``inputs`` and ``labels``.

    Any architecture opens: its sites are its ``named_modules`` paths (``"conv1"``,
    ``"features.0"``). The model runs in this process, on the window's worker thread
    (the window stays responsive), in eval mode; its ``training`` flags are put back
    when the window closes. An ``nn.Sequential`` resumes from the changed layer on an
    ablation; any other model reruns its whole forward pass — the status line says
    which.

    Parameters
    ----------
    model : torch.nn.Module
        On the CPU; it must return (N, classes) scores, or (N, T, vocabulary) for
        token ids.
    inputs : numpy array or torch tensor
        (N, C, H, W) float images, (N, T) integer token ids, or (N, F) float rows.
    labels : numpy array or torch tensor
        (N,) class indices; for token ids (N, T) next tokens, -1 where a position is
        not scored.
    class_names : sequence of str, optional
        One per model output (default ``"0"``, ``"1"``, …).
    layer : str, optional
        The layer shown first (default: the first convolution-like one).
    title : str, optional
        What the window calls the model.
    block : bool
        ``True`` (a script, or a notebook without ``%gui qt``): return when the window
        closes, like ``napari.run()``; the notebook cell runs until then.
        ``False`` (a notebook after ``%gui qt``, or pytest-qt): return the window at
        once; the running Qt event loop drives it and the notebook stays usable.

    Returns
    -------
    gui.main_window.MainWindow or None
        The window with ``block=False``, else ``None`` once it has closed.

    Raises
    ------
    TypeError
        ``model`` is no ``nn.Module``, or the data are not arrays.
    ValueError
        The data cannot be used (NaNs, wrong label count, labels beyond the outputs),
        the forward pass fails on the first example, or ``layer`` does not exist —
        before any window opens. Errors of later work are shown in the window.
    """
    from core.live import prepare
    from core.session import Session
    from gui.live_window import show_window

    live = prepare(model, inputs, labels, class_names, layer=layer, title=title)
    session = Session()
    session.add_live(live.entry, live.opened)
    try:
        return show_window(session, live.name, live.opened.default_layer, block=block,
                           on_close=live.restore)
    except BaseException:
        live.restore()
        raise


def digits():
    """The shipped 8x8 handwritten digits as the built-in digits model sees them:
    ``(x_train, y_train, x_test, y_test)``, images (N, 1, 16, 16) float32 in 0..1 and
    labels (N,) int64 0–9 (1,438 to train on, 359 held out). Offline."""
    from core.datasets import digits_split, digits_to_model

    train, y_train = digits_split("train")
    test, y_test = digits_split("eval")
    return digits_to_model(train), y_train, digits_to_model(test), y_test
