"""A labelled structure: an ASE ``Atoms`` plus canonical labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import ase
import numpy as np

from fieldforce.data.labels import LABELS


@dataclass
class Frame:
    """One structure with its reference labels.

    Attributes
    ----------
    atoms
        positions [N,3] Å, atomic numbers [N], cell [3,3] Å, pbc [3]; free-form
        tags (e.g. ``config_type``) live in ``atoms.info``.
    labels
        canonical name -> numpy array in internal units and canonical shape
        (see :data:`fieldforce.data.labels.LABELS`); only the labels present.
    source
        file the frame came from (for error messages); ``None`` if built in memory.
    index
        frame index in ``source``.
    """

    atoms: ase.Atoms
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    source: str | None = None
    index: int | None = None

    def __len__(self) -> int:
        return len(self.atoms)

    @property
    def efield(self) -> np.ndarray:
        """Applied uniform field [3] V/Å (zeros when the frame has none)."""
        return np.asarray(self.labels.get("efield", np.zeros(3)), dtype=float)

    @property
    def total_charge(self) -> float:
        """Net charge in e (0 when the frame does not say)."""
        return float(self.labels.get("total_charge", 0.0))

    def has(self, name: str) -> bool:
        return name in self.labels

    def copy(self) -> Frame:
        return Frame(
            self.atoms.copy(),
            {k: np.array(v, copy=True) for k, v in self.labels.items()},
            self.source,
            self.index,
        )

    def where(self) -> str:
        """``'file.xyz, frame 3'`` for error messages."""
        src = self.source or "<memory>"
        return f"{src}, frame {self.index}" if self.index is not None else src


def label_names() -> list[str]:
    """All canonical label names."""
    return list(LABELS)
