"""What an exact sweep (:mod:`core.adapters.torch_sweep`) knows of single modules:
which act on each element or channel alone, which are linear and what a change
becomes through them; and, with the same values, faster forms of the steps that cost
most on a CPU (a max pool, a one-channel convolution change, adding a change onto the
intact values in the same product)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Modules that map each element alone (in eval mode).
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
               nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign,
               nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Tanhshrink, nn.Identity)
DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
#: Modules that act on each channel (axis 1) alone.
POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
        nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.LPPool1d,
        nn.LPPool2d)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
#: Linear (no bias) modules that a change passes through as the module itself.
LINEAR_AS_IS = (nn.Flatten, nn.Unflatten, nn.Identity, nn.AvgPool1d, nn.AvgPool2d,
                nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d) + DROPOUT
CONV = (nn.Conv1d, nn.Conv2d)


def _eval_mode(module: nn.Module) -> bool:
    return not module.training


def per_element(module: nn.Module) -> bool:
    """``module`` maps each element alone (a dropout only in eval mode)."""
    if isinstance(module, DROPOUT):
        return _eval_mode(module)
    return isinstance(module, ELEMENTWISE)


def per_channel(module: nn.Module, ndim: int) -> bool:
    """``module`` acts on each channel of an (N, C, ...) input alone."""
    if isinstance(module, POOL):
        pool_dims = 2 if "2d" in type(module).__name__ else 1
        if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)) and module.return_indices:
            return False
        return ndim == 2 + pool_dims
    if isinstance(module, BATCHNORM):
        return (_eval_mode(module) and module.running_mean is not None
                and ndim in ((2, 3) if isinstance(module, nn.BatchNorm1d) else (4,)))
    return False


def conv_ok(module: nn.Module, ndim: int) -> bool:
    """A convolution that a channel's change folds through (zero padding, (N, C, ...)
    input of its own dimensions)."""
    dims = 2 if isinstance(module, nn.Conv2d) else 1
    return (isinstance(module, CONV) and module.padding_mode == "zeros"
            and ndim == 2 + dims)


def _linear_as_is(module: nn.Module) -> bool:
    if isinstance(module, DROPOUT):
        return _eval_mode(module)
    return isinstance(module, LINEAR_AS_IS)


def linear_change(module: nn.Module, delta: torch.Tensor) -> Optional[torch.Tensor]:
    """What ``module``'s output changes by when its input changes by ``delta``, for a
    module linear in its input (bias dropped); ``None`` when it is not linear."""
    if isinstance(module, nn.Linear):
        return F.linear(delta, module.weight)
    if isinstance(module, CONV) and module.padding_mode == "zeros":
        conv = F.conv2d if isinstance(module, nn.Conv2d) else F.conv1d
        return conv(delta, module.weight, None, module.stride, module.padding,
                    module.dilation, module.groups)
    if isinstance(module, BATCHNORM) and _eval_mode(module) \
            and module.running_var is not None:
        scale = torch.rsqrt(module.running_var + module.eps)
        if module.weight is not None:
            scale = scale * module.weight
        return delta * scale.reshape(1, -1, *([1] * (delta.dim() - 2)))
    if _linear_as_is(module):
        return module(delta)
    return None


def is_linear_module(module: nn.Module) -> bool:
    """Whether :func:`linear_change` knows ``module`` as linear in its input."""
    if isinstance(module, nn.Linear):
        return True
    if isinstance(module, CONV):
        return module.padding_mode == "zeros"
    if isinstance(module, BATCHNORM):
        return _eval_mode(module) and module.running_var is not None
    return _linear_as_is(module)


def max_pool(module: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """``nn.MaxPool2d`` with kernel = stride and no padding, as elementwise maxima of
    strided slices: the same values (a maximum picks one of its inputs) and, on CPU,
    many times faster than the pooling kernel on NCHW tensors. ``None`` when the
    module is not such a pool."""
    if not isinstance(module, nn.MaxPool2d) or x.dim() != 4 or module.return_indices:
        return None
    pair = nn.modules.utils._pair
    k, s = pair(module.kernel_size), pair(module.stride or module.kernel_size)
    if k != s or pair(module.padding) != (0, 0) or pair(module.dilation) != (1, 1):
        return None
    h, w = x.shape[2] // k[0], x.shape[3] // k[1]
    if h == 0 or w == 0 or (module.ceil_mode and (x.shape[2] % k[0] or x.shape[3] % k[1])):
        return None
    x = x[:, :, :h * k[0], :w * k[1]]
    # Rows first (contiguous runs of a row), then columns of the half as large result.
    out = x[:, :, 0::k[0]]
    for i in range(1, k[0]):
        out = torch.maximum(out, x[:, :, i::k[0]])
    cols = out
    out = cols[..., 0::k[1]]
    for j in range(1, k[1]):
        out = torch.maximum(out, cols[..., j::k[1]])
    return out


def run_module(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``, with the faster equal form of a max pool."""
    fast = max_pool(module, x)
    return module(x) if fast is None else fast


def _monotone(module: nn.Module) -> bool:
    """Never decreasing: the module commutes with a max pool exactly."""
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope >= 0
    return isinstance(module, (nn.ReLU, nn.ReLU6, nn.Hardtanh))


def run_rest(modules: Sequence[nn.Module], x: torch.Tensor, wide: int = 0
             ) -> tuple[torch.Tensor, int]:
    """The modules one after the other on ``x``, and how many ran: with ``wide``,
    they stop before the first module whose input has at most ``wide`` elements per
    row (the rest may run on more rows at once). A rectifier followed by a max pool
    runs after it instead (the same values: a maximum of rectified values is the
    rectified maximum), on a quarter of the elements."""
    i = 0
    while i < len(modules):
        if wide and x[0].numel() <= wide:
            break
        module = modules[i]
        if i + 1 < len(modules) and _monotone(module):
            pooled = max_pool(modules[i + 1], x)
            if pooled is not None:
                x, i = module(pooled), i + 2
                continue
        x, i = run_module(module, x), i + 1
    return x, i


def shared_tensor(arr: np.ndarray) -> torch.Tensor:
    """``arr`` as a tensor sharing its memory where it may: never written to in place."""
    arr = np.ascontiguousarray(arr)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def any_per_row(mask: torch.Tensor) -> torch.Tensor:
    """``mask.flatten(1).any(1)``, as a maximum over bytes (several times faster)."""
    return mask.reshape(len(mask), -1).view(torch.uint8).amax(1) != 0


class Start:
    """The intact values a unit's change is added onto: all rows or some of them, in
    the layout the adding product wants."""

    def __init__(self, full: torch.Tensor) -> None:
        self.full = full
        self._channel_major: Optional[torch.Tensor] = None

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        return self.full if len(rows) == len(self.full) else self.full.index_select(0, rows)

    def channel_major(self, rows: torch.Tensor) -> torch.Tensor:
        """(C, rows x positions): the rows of an (N, C, ...) tensor, channel first."""
        if self._channel_major is None:
            self._channel_major = self.full.transpose(0, 1).contiguous()
        cm = self._channel_major
        if len(rows) != len(self.full):
            cm = cm.index_select(1, rows)
        return cm.reshape(cm.shape[0], -1)


def add_linear(base: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
               into: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``base + F.linear(x, weight)`` in one product (into ``into`` if given)."""
    k, o = x.shape[-1], weight.shape[0]
    x2, b2 = x.reshape(-1, k), base.reshape(-1, o)
    if into is not None:
        torch.addmm(b2, x2, weight.t(), out=into.view(-1, o))
        return into
    return torch.addmm(b2, x2, weight.t()).view(*x.shape[:-1], o)


def _im2col(x: torch.Tensor, conv: nn.Conv2d) -> tuple[torch.Tensor, tuple[int, int]]:
    """(C x kernel positions, N x output positions): every kernel position's view of
    ``x`` (N, C, H, W) as ``conv`` sees it, copied once; and the output's (H, W)."""
    pair = nn.modules.utils._pair
    (sh, sw), (ph, pw), (dh, dw) = pair(conv.stride), pair(conv.padding), pair(conv.dilation)
    kh, kw = pair(conv.kernel_size)
    n, c = x.shape[:2]
    padded = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    windows = padded.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)
    windows = windows[..., ::dh, ::dw]  # n, c, ho, wo, kh, kw
    ho, wo = windows.shape[2:4]
    return windows.permute(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo), (ho, wo)


def conv_part(conv: nn.Conv2d, old: torch.Tensor, new: torch.Tensor, unit: int,
              rows: torch.Tensor, start: Optional[Start] = None,
              into: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One unit's change of ``conv``'s output on ``rows`` (plus ``start``'s rows):
    its input channel's change, as the columns of the convolution (:func:`_im2col`),
    times that channel's weights; for one channel several times faster than the
    convolution kernel on CPU."""
    change = new - (old if len(rows) == len(old) else old.index_select(0, rows))
    cols, out_hw = _im2col(change, conv)
    weight = conv.weight[:, unit].reshape(conv.out_channels, -1)
    out = weight @ cols if start is None else torch.addmm(start.channel_major(rows),
                                                          weight, cols)
    # The product is channel-major: a view in (rows, channels) order.
    return out.view(conv.out_channels, len(rows), *out_hw).transpose(0, 1)


def mix(mixer: nn.Module, change: torch.Tensor, lo: int, width: int,
        start: Optional[Start] = None, rows: Optional[torch.Tensor] = None,
        into: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The mixing layer's output change from ``change`` of input slice lo:lo+width,
    added onto ``start``'s ``rows`` if given (written into ``into`` if given)."""
    weight = mixer.weight[:, lo:lo + width]
    if isinstance(mixer, nn.Linear):
        # The unit's features lie on the last axis.
        if start is None:
            return change @ weight.t()
        return add_linear(start.rows(rows), change, weight, into)
    conv = F.conv2d if isinstance(mixer, nn.Conv2d) else F.conv1d
    out = conv(change, weight, None, mixer.stride, mixer.padding, mixer.dilation)
    return out if start is None else start.rows(rows) + out
