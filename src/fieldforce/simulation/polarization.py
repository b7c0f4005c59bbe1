"""Polarization along an MD run of a periodic latent-charge model, kept continuous.

:class:`TrackedPolarization` follows P(t) (e/Å²) on the branch of the atoms' motion
(a :class:`~fieldforce.electrostatics.PolarizationTracker` updated every step);
:func:`resumed_branch` rebuilds that branch from a trajectory for ``--resume``, and
:func:`check_branch` warns when the rebuilt branch does not reproduce the recorded P.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fieldforce.errors import DataError


class TrackedPolarization:
    """P(t) of a periodic latent-charge run, e/Å², on the branch that follows the atoms.

    ``update`` is called after every step (a :class:`PolarizationTracker` needs frames
    less than half a cell apart); ``value`` is the latest P [3] and ``total`` the sum
    over the updates of this run (the summary's mean).
    """

    def __init__(self, reference: np.ndarray | None = None) -> None:
        from fieldforce.electrostatics import PolarizationTracker

        self.tracker = PolarizationTracker(None if reference is None else
                                           torch.as_tensor(reference, dtype=torch.float64))
        self.value: np.ndarray | None = None
        self.total, self.count = np.zeros(3), 0

    def update(self, atoms, charges: np.ndarray, count: bool = True) -> np.ndarray:
        p = self.tracker(torch.as_tensor(atoms.positions, dtype=torch.float64),
                         torch.as_tensor(charges, dtype=torch.float64),
                         torch.as_tensor(atoms.cell.array, dtype=torch.float64), atoms.pbc)
        self.value = p.numpy().astype(float)
        if count:
            self.total, self.count = self.total + self.value, self.count + 1
        return self.value


def _fractional(atoms) -> np.ndarray:
    """Fractional coordinates [N, 3], not wrapped (the MD never wraps positions)."""
    return atoms.positions @ np.linalg.inv(atoms.cell.array)


def resumed_branch(traj_path: Path, last) -> np.ndarray:
    """The tracker's reference for resuming after ``last``: s_last - round(s_first).

    The tracker's first frame is on the default branch, s - round(s); every later step
    keeps the branch of the one before, so while positions stay unwrapped the branch is
    s(t) - round(s(0)).
    """
    import ase.io

    first = ase.io.read(traj_path, index=0, format="extxyz")
    if len(first) != len(last):
        raise DataError(f"frame 0 has {len(first)} atoms but the last frame {len(last)}: "
                        "cannot resume one trajectory", path=str(traj_path))
    return _fractional(last) - np.round(_fractional(first))


def check_branch(traj_path: Path, atoms, reference: np.ndarray, recorded_p) -> None:
    """Warn if the rebuilt branch does not give the last frame's recorded polarization
    (positions wrapped by hand, or another model): P(t) may then jump at the restart."""
    import warnings

    from fieldforce.electrostatics import polarization

    atoms.get_potential_energy()  # the charges; cached for the first step
    p = polarization(torch.as_tensor(atoms.positions), torch.as_tensor(
        atoms.calc.results["charges"]), torch.as_tensor(atoms.cell.array), atoms.pbc,
        reference=torch.as_tensor(reference)).numpy()
    recorded_p = np.asarray(recorded_p, dtype=float)
    if np.abs(p - recorded_p).max() > 1e-7:  # e/Å²; the file's precision gives ~1e-10
        warnings.warn(f"{traj_path}, last frame, key 'polarization': the recorded "
                      f"{recorded_p.tolist()} e/A^2 differs from {p.tolist()} recomputed "
                      "with the model on the continued branch (were the positions wrapped, "
                      "or the model changed?); P(t) may jump at this restart", stacklevel=3)
