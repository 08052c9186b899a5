"""A model on its own architecture — a trusted pickled ``nn.Module``, a trusted
TorchScript archive, a Keras file — and the data it is evaluated on (issue #15).

Owned by the "any trusted architecture" work; the Keras opener calls
:func:`open_own` too.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from core.files.opening import Opened
from core.jobs import CancelToken
from core.model import ModelAdapter

#: ``make(input_shape, input_dtype)`` -> a ready adapter, in this process. It is also
#: called in the trial-run child (forked), so it must load from the file itself.
Make = Callable[[tuple, np.dtype], ModelAdapter]


def open_own(make: Make, name: str, title: str, path: str, sha256: str,
             trusted_sha256: Optional[str], declared_input: Optional[tuple] = None,
             spec=None, data: Optional[str] = None,
             token: Optional[CancelToken] = None) -> Opened:
    """The model that ``make`` builds, trial-run, with the data it is evaluated on:

    1. ``data`` (the user's .npz / folder / CSV, of any input shape the model takes);
    2. else the built-in dataset whose inputs it takes (``declared_input`` (C, H, W)
       when the file says, else tried: the digits as (1, 16, 16) …);
    3. else, for an image model of another size, the digits converted with ``spec``
       (raises ``NeedsInputSpec`` to ask for it);
    4. else raises ``NeedsData`` (carrying ``trusted_sha256``, so the retry with data
       does not ask for trust again).
    """
    raise NotImplementedError("issue #15: any trusted architecture")
