"""The logit lens (issue #14): what would the model predict if it stopped here?

Each residual stream of a prompt — after the embedding, after each block's attention,
after its MLP — is read through the model's own final norm and unembedding, at every
position. The last row is the model's output. The torch work is in
:mod:`core.adapters.lm_lens`; this module checks the request and builds the value.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from core.ablation import Ablation
from core.jobs import CancelToken
from core.lm_values import LENS_TOP, LogitLens


def read(adapter, x: np.ndarray, target: Optional[int] = None,
         ablations: Sequence[Ablation] = (), means: Optional[Mapping] = None,
         token: Optional[CancelToken] = None) -> LogitLens:
    """The lens of the prompt ``x`` (T,) token ids on ``adapter``, with ``ablations``
    applied (``means``: the mean activations mean ablations use); ``target``: a token
    id whose probability every cell also gives."""
    # Any adapter: the torch module says in a sentence why one without a language
    # model's streams (an image model, an ONNX graph) has no lens.
    from core.adapters import lm_lens

    tokens = np.asarray(x, np.int64).reshape(-1)
    sites, labels, ids, probs, target_probs = lm_lens.read(
        adapter, tokens, None if target is None else int(target), ablations, means,
        LENS_TOP, token)
    for arr in (ids, probs, target_probs):
        if arr is not None:
            arr.flags.writeable = False
    tokens = tokens.copy()
    tokens.flags.writeable = False
    return LogitLens(sites, labels, tokens, ids, probs,
                     None if target is None else int(target), target_probs,
                     tuple(ablations))
