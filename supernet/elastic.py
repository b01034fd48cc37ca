"""Elastic layers: a static layer whose forward uses the leading slice of its max-size weight.

Weight entanglement (Chen et al., "AutoFormer", ICCV 2021, sec. 3.1): a subnet with a
smaller width uses the first rows/columns of the largest layer, so every subnet trains
every shared weight it uses. Each layer subclasses the static one and keeps its
state-dict keys. The active slice is set by `set_active`; under no-grad the materialised
(sliced, quantized, contiguous) weights are cached for the last configuration.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from supernet.quant import quantize_act, quantize_bias, quantize_weight

__all__ = ["ActiveSlice", "ElasticLayerNorm", "ElasticLinear", "ElasticQKV", "slice_cache"]


class ActiveSlice(NamedTuple):
    """The active slice of an elastic linear layer: its sizes and bit-width.

    Built once per `set_active`, never per forward; hashable, so it keys the slice cache.
    """

    out_features: int
    in_features: int
    bits: int


_CACHE_ENABLED = [True]


@contextmanager
def slice_cache(enabled: bool):
    """Turn the no-grad cache of materialised weights on or off (for benchmarks and tests)."""
    _CACHE_ENABLED.append(enabled)
    try:
        yield
    finally:
        _CACHE_ENABLED.pop()


class _SliceCache:
    """Remembers the last materialised weights with the tensor versions they came from."""

    __slots__ = ("key", "value")

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value: tuple = ()

    def get(self, key: tuple, make) -> tuple:
        if torch.is_grad_enabled() or not _CACHE_ENABLED[-1]:
            return make()
        if key != self.key:
            self.value, self.key = make(), key
        return self.value


class ElasticLinear(nn.Linear):
    """`nn.Linear` at max size; runs as `(out_active, in_active)` at `bits` with fake quantization.

    Keeps one calibrated activation range per bit-width (`act_absmax`), updated by an
    exponential moving average in training mode.
    """

    def __init__(self, in_features: int, out_features: int, bit_choices: tuple[int, ...] = (32,),
                 bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.bit_choices = tuple(bit_choices)
        self.register_buffer("act_absmax", torch.zeros(len(self.bit_choices)))
        self.active = ActiveSlice(out_features, in_features, 32)
        self._cache = _SliceCache()

    def set_active(self, *, out_features: int, in_features: int, bits: int) -> None:
        """Run as the leading `out_features` x `in_features` slice at `bits` (keywords only:
        a swapped pair on a square layer would otherwise slice the wrong way silently)."""
        self.active = ActiveSlice(out_features, in_features, bits)

    def sliced(self) -> tuple[Tensor, Tensor | None]:
        """The float (unquantized) weight and bias of the active slice."""
        out_f, in_f = self.active.out_features, self.active.in_features
        bias = self.bias[:out_f] if self.bias is not None else None
        return self.weight[:out_f, :in_f], bias

    def materialize(self) -> tuple[Tensor, Tensor | None]:
        """Active weight and bias, quantized and contiguous: exactly what an extracted layer stores."""
        bits = self.active.bits
        key = (self.active, self.weight._version, None if self.bias is None else self.bias._version)

        def make() -> tuple[Tensor, Tensor | None]:
            w, b = self.sliced()
            return quantize_weight(w, bits).contiguous(), quantize_bias(b, bits)

        return self._cache.get(key, make)

    def act_range(self, bits: int) -> Tensor | None:
        """The calibrated activation range for `bits` (None if that bit-width is not a choice)."""
        if bits not in self.bit_choices:
            return None
        return self.act_absmax[self.bit_choices.index(bits)]

    def _calibrate(self, x: Tensor, bits: int) -> None:
        if bits in (8, 4) and self.training and bits in self.bit_choices:
            with torch.no_grad():
                i = self.bit_choices.index(bits)
                current = x.detach().abs().max()
                old = self.act_absmax[i]
                self.act_absmax[i] = torch.where(old > 0, 0.9 * old + 0.1 * current, current)

    def forward(self, x: Tensor) -> Tensor:
        bits = self.active.bits
        self._calibrate(x, bits)
        w, b = self.materialize()
        return F.linear(quantize_act(x, bits, self.act_range(bits)), w, b)


class ElasticQKV(ElasticLinear):
    """The fused q/k/v projection: rows are [q | k | v], each `max_width` wide (timm layout).

    A subnet with width C uses the first C rows of each of q, k and v.
    """

    def sliced(self) -> tuple[Tensor, Tensor | None]:
        out_f, in_f = self.active.out_features, self.active.in_features
        c, max_c = out_f // 3, self.out_features // 3
        w = self.weight.view(3, max_c, self.in_features)[:, :c, :in_f].reshape(out_f, in_f)
        b = self.bias.view(3, max_c)[:, :c].reshape(out_f) if self.bias is not None else None
        return w, b


class ElasticLayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` over the first `active` features (eps 1e-6, as timm's ViT)."""

    def __init__(self, features: int) -> None:
        super().__init__(features, eps=1e-6)
        self.active = features

    def forward(self, x: Tensor) -> Tensor:
        d = self.active
        return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], self.eps)
