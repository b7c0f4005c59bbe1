"""A slab between grounded walls in a uniform applied field: the field it feels, its
electric enthalpy, aiming the applied strength at a wanted field, and Gauss's law.

Any DFT code that applies a field as a linear potential across a cell with
zero-potential (Dirichlet) walls along the normal (GPAW's ``ConstantElectricField``)
puts the slab in a capacitor. The walls hold the potential difference S·L across the
cell (S: the applied strength, L: the cell length along the normal); the metal shorts
part of it, and the slab's own dipole mu (along the normal, e·Å) is screened by image
charges in the walls. Integrating Poisson's equation across the cell gives the field the
surfaces actually feel, the same in both vacuum gaps of a neutral slab::

    F = S + mu / (eps0 A L)                                   (A: the cell's area)

(1.74 times S for a 2x2 Cu(100) slab in 6 Å of vacuum each side, plus 0.06 V/Å at S = 0
from the adatom's own dipole, 0.2 V/Å for a W adatom on W(110)). S is first set from a
geometric estimate of the screening (:attr:`SlabCapacitor.enhancement`); where the field
felt then misses the one asked by more than a tolerance (the slab's permanent dipole,
unknown before the SCF), :func:`aim_field` corrects S (Newton with the geometric slope,
then secant) and runs the SCF again.

The energy whose field derivative is -mu at fixed F, the electric enthalpy of a slab in
an unbounded field, is::

    U(F) = E_box(S) - mu² / (2 eps0 A L)          (dU/dF = -mu;  forces: those of the box)

(:meth:`SlabCapacitor.enthalpy`). Gauss's law checks that the slab screens: the charge
induced above its midplane between two applied strengths equals eps0 A dF
(:meth:`SlabCapacitor.gauss_ratio`). Units: Å, V/Å, e, eV. The backends
(:mod:`fieldforce.reference.gpaw_backend`) supply the SCF runs; this module holds no DFT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from fieldforce.data.slab import interior_plane, surface_normal
from fieldforce.errors import BackendError
from fieldforce.units import EPSILON0

#: distance (Å) of a metal surface's image plane outside its outermost atoms, used only
#: to choose the applied strength; the label records the field actually felt
IMAGE_PLANE_OFFSET = 1.0


@dataclass
class FieldRun:
    """One SCF run at the applied field ``applied`` [3] (V/Å): energy (eV), forces [N, 3]
    (eV/Å), dipole [3] (e·Å) and, for slabs asked for it, the electrons above the
    midplane. ``other_energy`` (eV): the code's other flavour of the same run's energy
    where it has one (GPAW: the zero-smearing extrapolation beside the free energy), so a
    relabel can show that it repeats an earlier label's calculation."""

    applied: np.ndarray
    energy: float
    forces: np.ndarray | None
    dipole: np.ndarray
    electrons_above: float | None = None
    other_energy: float | None = None


@dataclass(frozen=True)
class SlabCapacitor:
    """The slab of ``atoms`` in its cell seen as a capacitor (see the module docstring).

    Attributes
    ----------
    normal
        [3] unit surface normal (along the open cell vector).
    length
        cell length L along the normal, Å.
    capacitance
        eps0 A, e/V·Å (A the cell's area).
    enhancement
        geometric estimate of dF/dS: L over the vacuum between the image planes.
    midplane
        height along the normal of the interlayer gap nearest the slab's middle, Å.
    """

    normal: np.ndarray
    length: float
    capacitance: float
    enhancement: float
    midplane: float

    @classmethod
    def of(cls, atoms: Atoms) -> SlabCapacitor:
        normal = surface_normal(atoms, "a field along the normal")
        length = abs(float(atoms.cell.array[~atoms.pbc][0] @ normal))
        periodic = atoms.cell.array[atoms.pbc]
        capacitance = EPSILON0 * float(np.linalg.norm(np.cross(periodic[0], periodic[1])))
        heights = atoms.positions @ normal
        # the walls' potential drop S·L falls over the vacuum only: F ~ S L / (L - d),
        # d between the image planes
        thickness = np.ptp(heights) + 2 * IMAGE_PLANE_OFFSET
        enhancement = length / max(length - thickness, 0.25 * length)
        return cls(normal, length, capacitance, enhancement, interior_plane(heights))

    def felt(self, run: FieldRun) -> float:
        """The field in the vacuum gaps, F = S + mu / (eps0 A L), V/Å."""
        return float((run.applied + run.dipole / (self.capacitance * self.length))
                     @ self.normal)

    def enthalpy(self, run: FieldRun, energy: float | None = None) -> float:
        """U = E_box - mu² / (2 eps0 A L), eV: the energy whose dU/dF is -mu (E_box: the
        run's energy, or ``energy`` for another flavour of it)."""
        mu = float(run.dipole @ self.normal)
        box = run.energy if energy is None else energy
        return box - mu**2 / (2 * self.capacitance * self.length)

    def gauss_ratio(self, plus: FieldRun, minus: FieldRun) -> float:
        """The charge induced above the midplane between two runs over eps0 A dF (1 for a
        slab that screens the field before its middle)."""
        induced = -(plus.electrons_above - minus.electrons_above)
        return induced / (self.capacitance * (self.felt(plus) - self.felt(minus)))


def aim_field(run: Callable[[float], FieldRun], slab: SlabCapacitor, wanted: float,
              tol: float, max_corrections: int) -> tuple[FieldRun, float, int]:
    """Run at the applied strength S (``run(S)``, V/Å along the normal) whose field felt
    is within ``tol`` of ``wanted`` (V/Å): F(S) is nearly linear, with slope about the
    enhancement (Newton with it first, then secant through the last two runs). Returns
    the run, S and the corrections spent; BackendError after ``max_corrections``."""
    applied = wanted / slab.enhancement
    center = run(applied)
    slope, corrections = slab.enhancement, 0
    while abs(slab.felt(center) - wanted) > tol:
        if corrections == max_corrections:
            raise BackendError(
                f"the field felt stays {slab.felt(center) - wanted:+.3f} V/Å off the "
                f"{wanted:g} V/Å asked after {corrections} corrections of the applied "
                f"strength (field_tol {tol} V/Å)")
        previous = center
        applied += (wanted - slab.felt(previous)) / slope
        center = run(applied)
        corrections += 1
        change = float((center.applied - previous.applied) @ slab.normal)
        if abs(change) > 1e-9:
            slope = (slab.felt(center) - slab.felt(previous)) / change
    return center, applied, corrections


def check_fixed_layers(atoms: Atoms, normal: np.ndarray) -> None:
    """Atoms held by FixAtoms must be the bottom ones along ``normal``."""
    from ase.constraints import FixAtoms

    fixed = np.zeros(len(atoms), bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            fixed[c.index] = True
    if not fixed.any() or fixed.all():
        return
    heights = atoms.positions @ normal
    if heights[fixed].max() > heights[~fixed].min() + 0.1:
        raise BackendError(
            f"the fixed atoms are not the bottom layers: fixed atom "
            f"{int(np.flatnonzero(fixed)[np.argmax(heights[fixed])])} lies "
            f"{heights[fixed].max() - heights[~fixed].min():.2f} Å above the lowest free "
            "atom (fix the layers farthest from the surface being studied)"
        )


def electrons_above(density: np.ndarray, cell: np.ndarray, midplane: float,
                    normal: np.ndarray) -> float:
    """Electrons above the plane at height ``midplane`` (Å) along ``normal`` of a
    ``density`` (electrons / Å³) on the cell's grid, grid point (i, j, k) at fractional
    (i, j, k) / shape (a zero-boundary grid padded to the cell)."""
    shape = np.array(density.shape)
    frac = [np.arange(n) / n for n in shape]
    grid = np.stack(np.meshgrid(*frac, indexing="ij"), axis=-1) @ cell
    above = grid @ normal > midplane
    return float(density[above].sum() * abs(np.linalg.det(cell)) / density.size)


__all__ = ["IMAGE_PLANE_OFFSET", "FieldRun", "SlabCapacitor", "aim_field",
           "check_fixed_layers", "electrons_above"]
