"""A torch model's units seen one at a time (issue #13): the weights a unit owns, the
weights from it to the output classes, and an input optimised to excite it.

How layers connect is read off one traced forward pass (:func:`trace`): forward
pre-hooks note which module produced each module's input (by tensor identity and
version, so in-place layers and containers that return a child's output stay right).
Nothing here guesses a connection it did not see; where the structure is not one it
recognises, the answer is ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from core.errors import InputError
from core.jobs import CancelToken, check, report
from core.unit_values import UnitWeights

#: The model's input, as a producer name.
INPUT = "<input>"

#: Layers that keep each unit where it was (same unit axis, same unit count):
#: a unit of one of these has the weights of the layer that feeds it.
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU,
                nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh,
                nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Dropout, nn.Dropout1d,
                nn.Dropout2d, nn.AlphaDropout, nn.Identity)
_CHANNEL_WISE = _ELEMENTWISE + (nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool1d,
                                nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
                                nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)

#: Most tiles a unit page draws.
MAX_TILES = 64


# --- the traced data flow ---------------------------------------------------------------
@dataclass(frozen=True)
class Flow:
    """Who feeds whom, from one forward pass.

    ``sources[name]``: the modules that returned ``name``'s first input, innermost
    first (``(INPUT,)`` for the model input, ``()`` when an operation outside any
    module made it); ``outputs[name]``: the key of the tensor it returned;
    ``inputs[name]``: the key of its first input; ``in_shapes``/``out_shapes`` one
    example's shapes; ``calls[name]``: how often it ran (a module run twice has no
    single input); ``output_key``: the model's output tensor.
    """

    sources: dict
    inputs: dict
    outputs: dict
    in_shapes: dict
    out_shapes: dict
    calls: dict
    output_key: Optional[tuple]

    def source(self, name: str) -> Optional[str]:
        """The module whose output ``name`` reads (the last to return that tensor,
        not counting containers that return a child's output), ``INPUT``, or ``None``."""
        if self.calls.get(name) != 1:
            return None
        found = _innermost(self.sources.get(name, ()))
        return found[-1] if found else None

    def consumers(self, name: str) -> list[str]:
        """Modules whose first input is exactly what ``name`` returned (not through
        another module returning the same tensor, such as an identity)."""
        return [n for n, found in self.sources.items()
                if _innermost(found)[-1:] == (name,)
                and not n.startswith(name + ".") and not name.startswith(n + ".")]


def _innermost(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` without the containers that only returned another's output."""
    return tuple(n for n in names
                 if not any(m != n and m.startswith(n + ".") for m in names))


def _key(t: torch.Tensor) -> tuple:
    return (id(t), t._version)


def trace(model: nn.Module, input_shape: tuple[int, ...], dtype: np.dtype) -> Flow:
    """One forward pass of a batch of two zero inputs, recording the data flow."""
    producers: dict[tuple, list[str]] = {}
    sources: dict[str, tuple] = {}
    inputs: dict[str, tuple] = {}
    outputs: dict[str, tuple] = {}
    in_shapes: dict[str, tuple] = {}
    out_shapes: dict[str, tuple] = {}
    calls: dict[str, int] = {}
    keep: list[torch.Tensor] = []  # holds every tensor seen, so no id is reused
    handles = []

    def pre(name):
        def hook(_m, args):
            calls[name] = calls.get(name, 0) + 1
            x = args[0] if args else None
            if isinstance(x, torch.Tensor):
                keep.append(x)
                inputs[name] = _key(x)
                sources[name] = tuple(producers.get(_key(x), ()))
                in_shapes[name] = tuple(x.shape[1:])
        return hook

    def post(name):
        def hook(_m, _args, out):
            if isinstance(out, torch.Tensor):
                keep.append(out)
                producers.setdefault(_key(out), []).append(name)
                outputs[name] = _key(out)
                out_shapes[name] = tuple(out.shape[1:])
        return hook

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_pre_hook(pre(name)))
                handles.append(module.register_forward_hook(post(name)))
        x = torch.zeros((2, *input_shape), dtype=_torch_dtype(dtype))
        keep.append(x)
        producers[_key(x)] = [INPUT]
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    out_key = _key(out) if isinstance(out, torch.Tensor) else None
    return Flow(sources, inputs, outputs, in_shapes, out_shapes, calls, out_key)


def _torch_dtype(dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(1, np.dtype(dtype))).dtype


# --- a unit's own weights ---------------------------------------------------------------
def _weighted(model: nn.Module, flow: Flow, site: str) -> Optional[str]:
    """The conv or linear layer whose unit ``site``'s unit is: ``site`` itself, or the
    layer that feeds a chain of unit-preserving layers ending at ``site``."""
    modules = dict(model.named_modules())
    name = site
    for _ in range(len(modules)):
        module = modules.get(name)
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return name
        if not isinstance(module, _CHANNEL_WISE):
            return None
        name = flow.source(name)
        if name is None or name == INPUT:
            return None
    return None


def unit_weights(model: nn.Module, flow: Flow, site: str, unit: int,
                 labels: Sequence[str] = ()) -> Optional[UnitWeights]:
    """The weights of unit ``unit`` of ``site`` as pictures, or ``None``."""
    modules = dict(model.named_modules())
    if site not in modules or unit < 0:
        return None
    attn = _attention_of(model, site)
    if attn is not None:
        return _circuits(model, attn, unit, labels)
    name = _weighted(model, flow, site)
    if name is None:
        return None
    module = modules[name]
    via = "" if name == site else f" ({site} keeps {name}'s units, one for one)"
    if isinstance(module, nn.Conv2d):
        return _kernels(module, flow, name, unit, via)
    return _incoming(module, modules, flow, name, unit, via)


def _f32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


def _strongest(weights: np.ndarray, limit: int = MAX_TILES) -> np.ndarray:
    """Indices of the ``limit`` tiles with the largest weights, in their order."""
    if len(weights) <= limit:
        return np.arange(len(weights))
    norms = np.sqrt((weights.reshape(len(weights), -1) ** 2).sum(axis=1))
    return np.sort(np.argsort(-norms, kind="stable")[:limit])


def _kernels(conv: nn.Conv2d, flow: Flow, name: str, unit: int,
             via: str) -> Optional[UnitWeights]:
    if unit >= conv.out_channels:
        return None
    w = _f32(conv.weight[unit])  # (in / groups, kh, kw)
    per_group = conv.out_channels // conv.groups
    first = (unit // per_group) * (conv.in_channels // conv.groups)
    source = flow.source(name)
    shown = _strongest(w)
    kh, kw = w.shape[1:]
    if source == INPUT:
        titles = tuple(f"input channel {first + c}" for c in shown)
        caption = (f"The {kh}x{kw} kernel of channel {unit} of {name}{via}, one per "
                   f"input channel: the pattern in the input image it responds to "
                   f"(bright = positive weight).")
    else:
        what = source or "the previous layer"
        titles = tuple(f"{what} ch {first + c}" for c in shown)
        caption = (f"The {kh}x{kw} weights of channel {unit} of {name}{via} onto each "
                   f"channel of {what}, not onto pixels: one tile per channel it reads.")
    if len(shown) < len(w):
        caption += f" The {len(shown)} strongest of {len(w)} are shown."
    return UnitWeights("kernels", tuple(w[c] for c in shown), titles, caption)


def _layout_of(modules: dict, flow: Flow, name: str) -> tuple[Optional[tuple], str]:
    """The shape a linear layer's input had before it was flattened, and where from."""
    source = flow.source(name)
    if source is None or source == INPUT:
        return None, source or ""
    if isinstance(modules.get(source), nn.Flatten):
        before = flow.in_shapes.get(source)
        origin = flow.source(source)
        if before is not None and len(before) == 3 and origin is not None:
            return before, origin
    return None, source


def _incoming(linear: nn.Linear, modules: dict, flow: Flow, name: str, unit: int,
              via: str) -> Optional[UnitWeights]:
    if unit >= linear.out_features:
        return None
    row = _f32(linear.weight[unit])
    n = len(row)
    shape, origin = _layout_of(modules, flow, name)
    head = f"Incoming weights of neuron {unit} of {name}{via}"
    if shape is not None and int(np.prod(shape)) == n:
        c, h, w = shape
        tiles = row.reshape(c, h, w)
        if origin == INPUT and c == 1:
            return UnitWeights("incoming", (tiles[0],), ("input",),
                               f"{head}, laid out as the {h}x{w} input image it reads "
                               f"(bright = positive weight).")
        shown = _strongest(tiles)
        what = "input" if origin == INPUT else origin
        caption = (f"{head}, laid out as the {c}x{h}x{w} output of {what} it reads: one "
                   f"{h}x{w} tile per channel.")
        if len(shown) < c:
            caption += f" The {len(shown)} strongest of {c} are shown."
        return UnitWeights("incoming", tuple(tiles[i] for i in shown),
                           tuple(f"{what} ch {i}" for i in shown), caption)
    what = "the input" if origin == INPUT else (origin or "its input")
    h = _rows_for(n)
    if h > 1:
        return UnitWeights("incoming", (row.reshape(h, n // h),), (f"{name} {unit}",),
                           f"{head} from the {n} features of {what}, wrapped into "
                           f"{h} rows of {n // h} (feature i at row i // {n // h}, column "
                           f"i % {n // h}); the arrangement has no spatial meaning.")
    return UnitWeights("incoming", (row.reshape(1, n),), (f"{name} {unit}",),
                       f"{head} from the {n} features of {what}, as one row "
                       f"(feature 0 on the left).")


def _rows_for(n: int) -> int:
    """Rows of a near-square wrap of ``n`` features (1: draw one row)."""
    if n <= 32:
        return 1
    h = math.isqrt(n)
    while h > 1 and n % h:
        h -= 1
    return h if n // h <= 4 * h else 1


# --- attention heads --------------------------------------------------------------------
def _attention_of(model: nn.Module, site: str) -> Optional[nn.Module]:
    """The zoo transformer's attention module ``site`` is (or is the pattern or heads
    of); ``None`` for any other site."""
    from core.zoo import tiny_transformer

    modules = dict(model.named_modules())
    for name in (site, site.rpartition(".")[0]):
        module = modules.get(name)
        child = site.rpartition(".")[2]
        if isinstance(module, tiny_transformer.Attention) and (
                name == site or child in (module.mechscope_pattern, module.mechscope_heads)):
            return module
    return None


def _circuits(model: nn.Module, attn: nn.Module, head: int,
              labels: Sequence[str]) -> Optional[UnitWeights]:
    from core.zoo import tiny_transformer

    n_heads = tiny_transformer.N_HEADS
    d = attn.out.in_features
    embeds = [m for m in model.modules() if isinstance(m, tiny_transformer.Embed)]
    unembed = getattr(model, "unembed", None)
    if (head >= n_heads or len(embeds) != 1 or not isinstance(unembed, nn.Linear)
            or attn.qkv.out_features != 3 * d or d % n_heads):
        return None
    dh = d // n_heads
    w_e = embeds[0].tok.weight.detach().double()             # (V, d)
    w_u = unembed.weight.detach().double().T                  # (d, V)
    qkv = attn.qkv.weight.detach().double()                   # (3d, d): y = x W^T
    cols = slice(head * dh, (head + 1) * dh)
    w_q = qkv[0 * d:1 * d][cols].T                            # (d, dh)
    w_k = qkv[1 * d:2 * d][cols].T
    w_v = qkv[2 * d:3 * d][cols].T
    w_o = attn.out.weight.detach().double()[:, cols].T        # (dh, d)
    qk = (w_e @ w_q) @ (w_e @ w_k).T / math.sqrt(dh)          # (query, key)
    ov = w_e @ w_v @ w_o @ w_u                                # (source, output)
    v = w_e.shape[0]
    names = tuple(labels) if len(labels) == v else _vocab(v)
    caption = (f"Head {head}'s circuits on the direct path, from the token embeddings "
               f"straight into the head (positions, biases and the other heads left "
               f"out). QK: the score a query token (row) gives a key token (column). "
               f"OV: how much attending to a token (row) raises each output token's "
               f"logit (column); a bright diagonal means the head copies.")
    return UnitWeights("circuits", (qk.float().numpy(), ov.float().numpy()),
                       ("QK: query token → key token", "OV: attended token → output token"),
                       caption, names, names)


def _vocab(v: int) -> tuple[str, ...]:
    from core.zoo.induction import VOCAB

    return tuple(VOCAB) if len(VOCAB) == v else tuple(str(i) for i in range(v))


# --- the weights from a unit to the classes ---------------------------------------------
def output_weights(model: nn.Module, flow: Flow, site: str, unit: int) -> Optional[np.ndarray]:
    """(K,) weights from neuron ``unit`` of ``site`` to each output, where the model's
    output is one linear layer of ``site``'s output (through elementwise layers);
    ``None`` otherwise."""
    modules = dict(model.named_modules())
    shape = flow.out_shapes.get(site)
    if site not in modules or shape is None or len(shape) != 1 or not 0 <= unit < shape[0]:
        return None
    if flow.output_key is None or flow.calls.get(site) != 1:
        return None
    name = site
    for _ in range(len(modules)):
        if flow.outputs.get(name) == flow.output_key:
            # ``name`` made the model's output; it must be a linear layer reading the
            # unit through nothing but elementwise layers.
            return None
        after = [n for n in flow.consumers(name) if flow.calls.get(n) == 1]
        leaves = [n for n in after if not any(True for _ in modules[n].children())]
        if len(leaves) != 1:
            return None
        nxt = leaves[0]
        module = modules[nxt]
        if isinstance(module, nn.Linear):
            # Its output (or a container returning it) must be the model's output.
            ends = flow.outputs.get(nxt) == flow.output_key
            out_shape = flow.out_shapes.get(nxt)
            if ends and out_shape is not None and len(out_shape) == 1:
                return _f32(module.weight[:, unit])
            return None
        if not isinstance(module, _ELEMENTWISE):
            return None
        name = nxt
    return None


# --- feature visualisation --------------------------------------------------------------
class _Reached(Exception):
    """Raised by the hook on the visualised site: the rest of the forward pass is not
    needed."""


class _Adam:
    """Adam on one tensor, written out: ``torch.optim`` imports the compiler stack on
    its first step, which costs seconds the first time a unit is visualised."""

    def __init__(self, x: torch.Tensor, lr: float, betas=(0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.x, self.lr, self.betas, self.eps, self.t = x, lr, betas, eps, 0
        self.m = torch.zeros_like(x)
        self.v = torch.zeros_like(x)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        m_hat = self.m / (1 - b1 ** self.t)
        v_hat = self.v / (1 - b2 ** self.t)
        self.x.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels: small for smooth strokes."""
    return ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean() + \
        ((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean()


def visualise(model: nn.Module, input_shape: tuple[int, ...], input_dtype: np.dtype,
              site: str, unit: int, unit_axis: int, steps: int = 256, seed: int = 0,
              value_range: Optional[tuple[float, float]] = None,
              token: Optional[CancelToken] = None,
              scale: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_visualise` on one torch thread: hundreds of tiny forward/backward passes
    on one input spend more time syncing two threads than computing (2-14 s per unit on
    a loaded 2-core laptop, 0.2 s on one thread). The compute process runs one job at a
    time, so the setting is restored before anything else runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _visualise(model, input_shape, input_dtype, site, unit, unit_axis, steps,
                          seed, value_range, token, scale)
    finally:
        torch.set_num_threads(threads)


#: Weights of the penalties, relative to the objective divided by ``scale``: found by
#: looking at the digits CNN's units — weaker, and a ReLU network's activation (linear
#: in the input's contrast) pushes every pixel to the range's ends, which reads as
#: noise; stronger, and conv2 units stop beating their best dataset example.
L2_WEIGHT, TV_WEIGHT = 2.0, 0.5


def _visualise(model: nn.Module, input_shape: tuple[int, ...], input_dtype: np.dtype,
               site: str, unit: int, unit_axis: int, steps: int = 256, seed: int = 0,
               value_range: Optional[tuple[float, float]] = None,
               token: Optional[CancelToken] = None,
               scale: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """Optimise an input to raise the mean over positions of unit ``unit`` of ``site``.

    ``unit_axis`` is the unit axis of the site's output with the batch axis (1 for
    channels and neurons). ``scale`` (e.g. the unit's best value on the data) puts the
    objective on the penalties' footing, so one setting suits units whose values are 1
    or 100. Regularisers: jitter (random shifts), an L2 pull towards the range's low
    end (the background of ink-on-black data), total variation, and for images of
    16 px and more a half-resolution parameterisation (the input is a bilinear
    upsampling of the optimised image, which keeps checkerboards out). Returns the
    input (``input_shape``, float32) and the objective at each step (``steps``,)
    float32; the last entry is the objective on the returned input itself (no jitter).
    """
    if np.dtype(input_dtype).kind != "f":
        raise InputError("Feature visualisation optimises an input image; this model "
                         "reads token ids, which cannot be nudged a little.")
    modules = dict(model.named_modules())
    if site not in modules or not site:
        raise InputError(f"The model has no layer named {site!r}.")
    steps = max(int(steps), 2)
    if value_range is None:             # no bounds: only the L2 penalty holds it
        lo, hi, span, middle, rest = -math.inf, math.inf, 1.0, 0.0, 0.0
    else:
        lo, hi = (float(v) for v in value_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise InputError(f"The input range {lo}..{hi} is empty; feature "
                             f"visualisation needs inputs that vary.")
        span, middle, rest = hi - lo, 0.5 * (lo + hi), lo
    scale = abs(float(scale)) if scale else 1.0
    image = len(input_shape) == 3
    jitter = 0 if not image else (1 if min(input_shape[-2:]) < 32 else 2)
    half = image and min(input_shape[-2:]) >= 16
    shape = (1, input_shape[0], (input_shape[1] + 1) // 2, (input_shape[2] + 1) // 2) \
        if half else (1, *input_shape)

    def make(z: torch.Tensor) -> torch.Tensor:
        if not half:
            return z
        return nn.functional.interpolate(z, size=tuple(input_shape[-2:]), mode="bilinear",
                                         align_corners=False)

    gen = torch.Generator().manual_seed(int(seed))
    z = middle + 0.01 * span * torch.randn(shape, generator=gen)
    z = z.clamp(lo, hi).requires_grad_(True)
    adam = _Adam(z, lr=0.05 * span)
    polish = max(1, steps // 8)         # last steps without jitter
    trace = np.zeros(steps, np.float32)
    caught: dict[str, torch.Tensor] = {}
    target = modules[site]

    def hook(_m, _i, out):
        caught["out"] = out
        raise _Reached()

    params = list(model.parameters())
    saved = [p.requires_grad for p in params]
    was_training = model.training
    handle = target.register_forward_hook(hook)

    def objective(inp: torch.Tensor) -> torch.Tensor:
        caught.clear()
        try:
            model(inp)
        except _Reached:
            pass
        out = caught.get("out")
        if not isinstance(out, torch.Tensor):
            raise InputError(f"{site} did not give a tensor to optimise.")
        if not 0 <= unit < out.shape[unit_axis]:
            raise InputError(f"{site} has {out.shape[unit_axis]} units; there is no "
                             f"unit {unit}.")
        return out.select(unit_axis, unit).mean()

    try:
        model.eval()
        for p in params:
            p.requires_grad_(False)
        with torch.enable_grad():
            for i in range(steps - 1):
                if i % 8 == 0:
                    check(token)
                    report(token, i / steps, f"{site} {unit}: step {i} of {steps}")
                x = make(z)
                inp = x
                if i < steps - polish and jitter:
                    dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,),
                                                            generator=gen))
                    inp = torch.roll(x, (dy, dx), dims=(-2, -1))
                act = objective(inp)
                scaled = (x - rest) / span
                loss = -act / scale + L2_WEIGHT * (scaled ** 2).mean()
                if image:
                    loss = loss + TV_WEIGHT * _total_variation(scaled)
                grad, = torch.autograd.grad(loss, z)
                adam.step(grad)
                with torch.no_grad():
                    z.clamp_(lo, hi)
                trace[i] = float(act.detach())
        with torch.no_grad():
            x = make(z)
            trace[-1] = float(objective(x))
    finally:
        handle.remove()
        for p, flag in zip(params, saved):
            p.requires_grad_(flag)
        model.train(was_training)
    report(token, 1.0, f"{site} {unit}: done")
    return x.detach().numpy()[0].astype(np.float32), trace
