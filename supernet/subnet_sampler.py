"""Which subnets a supernet training step trains: uniform, complexity-aware, performance-aware.

- `uniform`: every dimension uniform (OFA, Cai et al., ICLR 2020).
- `complexity`: ElasticViT's complexity-aware sampling (Tang et al., ICCV 2023, sec. 3.2):
  the MACs range is cut into bands, and the band of step t follows a triangle wave over the
  epoch, so the subnets of adjacent steps are close in size (less gradient conflict) while
  every band is trained each epoch.
- `performance`: ElasticViT's performance-aware sampling (sec. 3.3) on top: per band, a
  small bank of the subnets with the lowest recent loss; with probability `bank_prob` a
  step's random subnet is drawn from the bank of its band, else fresh (complexity-aware).

Draws depend only on (seed, step) and the bank, so all data-parallel ranks pick the same
subnets and a resumed run picks what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search_space import Arch, SearchSpace

__all__ = ["SAMPLING_MODES", "SubnetSampler"]

SAMPLING_MODES = ("uniform", "complexity", "performance")


@dataclass
class _Entry:
    arch: Arch
    loss: float
    step: int


@dataclass
class SubnetSampler:
    """Draws the random subnets of each step.

    Args:
        space: the search space.
        mode: one of `SAMPLING_MODES`.
        seed: the run's seed.
        bands: number of equal-width MACs bands.
        bank_size: subnets kept per band (performance mode).
        bank_prob: probability of drawing from the bank (performance mode).
        max_age: steps after which a bank entry's loss is considered stale and dropped.
    """

    space: SearchSpace
    mode: str = "performance"
    seed: int = 0
    bands: int = 10
    bank_size: int = 8
    bank_prob: float = 0.5
    max_age: int = 200
    banks: list[list[_Entry]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling: {self.mode!r} is not one of {list(SAMPLING_MODES)}")
        if not self.banks:
            self.banks = [[] for _ in range(self.bands)]
        lo, hi = self.space.macs_range()
        self._edges = np.linspace(lo, hi, self.bands + 1)

    def band(self, step: int, steps_per_epoch: int) -> int:
        """The MACs band of `step`: a triangle wave, 0 -> top -> 0 over one epoch."""
        phase = (step % steps_per_epoch) / steps_per_epoch
        position = 1.0 - abs(2.0 * phase - 1.0)
        return min(int(position * self.bands), self.bands - 1)

    def band_of(self, arch: Arch) -> int:
        index = int(np.searchsorted(self._edges, self.space.macs(arch), side="right")) - 1
        return min(max(index, 0), self.bands - 1)

    def draw(self, step: int, steps_per_epoch: int, count: int) -> list[Arch]:
        """The `count` random subnets of `step` (the sandwich's largest and smallest excluded)."""
        rng = np.random.default_rng([self.seed, step])
        if self.mode == "uniform":
            return [self.space.sample(rng) for _ in range(count)]
        band = self.band(step, steps_per_epoch)
        edges = (self._edges[band], self._edges[band + 1])
        archs = []
        for _ in range(count):
            bank = [e for e in self.banks[band] if step - e.step <= self.max_age]
            if self.mode == "performance" and bank and rng.random() < self.bank_prob:
                archs.append(bank[int(rng.integers(len(bank)))].arch)
            else:
                archs.append(self.space.sample_by_macs(rng, band=edges))
        return archs

    def record(self, step: int, arch: Arch, loss: float) -> None:
        """Remember a subnet's loss at `step` (performance mode keeps the best per band)."""
        if self.mode != "performance":
            return
        band = self.banks[self.band_of(arch)]
        band[:] = [e for e in band if e.arch != arch and step - e.step <= self.max_age]
        band.append(_Entry(arch, float(loss), step))
        band.sort(key=lambda e: e.loss)
        del band[self.bank_size :]

    def state_dict(self) -> dict[str, Any]:
        """Plain data (goes into the checkpoint, loadable with weights_only=True)."""
        return {"mode": self.mode, "banks": [[{"arch": e.arch.to_dict(), "loss": e.loss, "step": e.step}
                                              for e in bank] for bank in self.banks]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.banks = [[_Entry(self.space.arch_from_dict(e["arch"]), float(e["loss"]), int(e["step"]))
                       for e in bank] for bank in state["banks"]]
