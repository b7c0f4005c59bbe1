"""GPAW backend: periodic slabs (and molecules) in a uniform field along a vacuum direction.

GPAW runs in real-space (finite-difference) mode with zero-potential boundary
conditions along every non-periodic direction, so a uniform field is a linear
external potential across the vacuum, ``gpaw.external.ConstantElectricField``
(strength in V/Å; the electrons' potential energy is +E·(r - c), i.e. a
positive strength along +z pushes positive charge to +z, F = qE). No dipole
correction is needed or used: the non-periodic boundary already removes the
interaction between periodic images along the field.

What the input must satisfy (checked, one clear error otherwise):

* a slab is periodic in exactly two directions; the field must be along the
  third, non-periodic one (an in-plane uniform field has no meaning in a
  periodic metal and would break periodicity);
* every atom is at least ``min_vacuum`` Å from each non-periodic cell face
  (the density must vanish where the boundary condition is applied);
* a fully non-periodic cell (a molecule) may take a field in any direction.

Labels: energy (eV; GPAW's energy is relative to its reference atoms, which is
consistent within this backend), forces (eV/Å) and dipole (e·Å; for slabs only
the component along the normal is physical). Polarizabilities and Born charges
are not offered here: use the PySCF backend for molecules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from fieldforce.config import Section, option
from fieldforce.errors import BackendError
from fieldforce.reference.backend import Backend, check_properties, make_settings


@dataclass(kw_only=True)
class GPAWSettings(Section):
    """Numerical settings of the GPAW backend.

    Attributes
    ----------
    xc
        functional (libxc/GPAW name), e.g. "PBE", "LDA".
    h
        real-space grid spacing, Å.
    kpts
        Monkhorst-Pack k-points along the periodic directions (1 along non-periodic ones).
    smearing
        Fermi-Dirac width, eV (metals need > 0).
    min_vacuum
        smallest allowed distance from an atom to a non-periodic cell face, Å.
    energy_tol, density_tol
        SCF convergence (eV per valence electron, electrons per valence electron).
    charge
        net charge (e).
    """

    xc: str = option("PBE", "functional (libxc/GPAW name)")
    h: float = option(0.2, "real-space grid spacing, Å", exclusive_minimum=0)
    kpts: tuple[int, ...] = option((4, 4), "Monkhorst-Pack k-points along the periodic "
                                   "directions", minimum=1)
    smearing: float = option(0.1, "Fermi-Dirac width, eV", minimum=0)
    min_vacuum: float = option(4.0, "smallest distance from an atom to a non-periodic cell "
                               "face, Å", minimum=0)
    energy_tol: float = option(1e-6, "SCF energy convergence, eV per valence electron",
                               exclusive_minimum=0)
    density_tol: float = option(1e-6, "SCF density convergence, electrons per valence "
                                "electron", exclusive_minimum=0)
    charge: float = option(0.0, "net charge, e")


class GPAWBackend(Backend):
    """Finite-field DFT of slabs and molecules with GPAW (see the module docstring)."""

    name = "gpaw"
    properties = ("energy", "forces", "dipole")
    max_field = 5.0
    max_field_reason = "field evaporation of most metal surfaces sets in below it"

    def __init__(self, settings: GPAWSettings | None = None, **options) -> None:
        self.config = make_settings(GPAWSettings, settings, options, "GPAW")

    def validate(self, frames) -> None:
        """The functional is one GPAW can use and there is a PAW dataset for every element."""
        from gpaw.setup import create_setup
        from gpaw.xc import XC

        try:
            xc = XC(self.config.xc)
        except Exception as exc:  # noqa: BLE001 - GPAW raises several types
            raise BackendError(f"GPAW settings: key 'xc': GPAW cannot use {self.config.xc!r} "
                               f"({str(exc).splitlines()[0]}); e.g. PBE, LDA, RPBE") from None
        for symbol in sorted({s for f in frames for s in f.atoms.get_chemical_symbols()}):
            try:
                create_setup(symbol, xc)
            except Exception as exc:  # noqa: BLE001
                raise BackendError(f"GPAW: no PAW dataset for {symbol} with {self.config.xc} "
                                   f"({str(exc).splitlines()[0]})") from None

    def settings(self) -> dict:
        return asdict(self.config)

    def check_geometry(self, atoms: Atoms, efield: np.ndarray) -> None:
        """Raise BackendError unless the cell, vacuum and field suit this backend."""
        pbc = atoms.pbc
        cell = atoms.cell.array
        if abs(np.linalg.det(cell)) < 1e-6:
            raise BackendError("the gpaw backend needs a cell with vacuum; this one has no volume")
        if pbc.sum() not in (0, 2):
            raise BackendError(
                f"the gpaw backend labels slabs (periodic in two directions) or molecules "
                f"(no periodicity); got pbc={pbc.tolist()}"
            )
        open_axes = [k for k in range(3) if not pbc[k]]
        for k in range(3):
            if pbc[k] and abs(cell[k] @ np.eye(3)[open_axes[0]]) > 1e-8:
                raise BackendError("the non-periodic cell vector must be orthogonal to the "
                                   "slab plane (the field is applied along it)")
        if pbc.any():
            normal = np.eye(3)[open_axes[0]]
            in_plane = efield - (efield @ normal) * normal
            if np.abs(in_plane).max() > 1e-12:
                raise BackendError(
                    f"the field must be along the slab normal (axis {'xyz'[open_axes[0]]}); "
                    f"got an in-plane component {np.round(in_plane, 6).tolist()} V/Å"
                )
        scaled = atoms.get_scaled_positions(wrap=False)
        for k in open_axes:
            length = np.linalg.norm(cell[k])
            gap = min(scaled[:, k].min(), 1 - scaled[:, k].max()) * length
            if gap < self.config.min_vacuum - 1e-6:
                raise BackendError(
                    f"only {gap:.2f} Å of vacuum between an atom and the cell face along "
                    f"{'xyz'[k]}; at least {self.config.min_vacuum} Å is needed "
                    "(ase.Atoms.center(vacuum=...) adds it)"
                )

    def label(self, atoms: Atoms, efield, properties: Iterable[str]) -> dict:
        from gpaw import GPAW, FermiDirac
        from gpaw.external import ConstantElectricField

        props = check_properties(properties)
        unsupported = sorted(props - set(self.properties))
        if unsupported:
            raise BackendError(f"the gpaw backend computes {', '.join(self.properties)}; "
                               f"not {', '.join(unsupported)} (use the pyscf backend)")
        efield = np.asarray(efield, dtype=float).reshape(3)
        self.check_geometry(atoms, efield)
        s = self.config
        kpts = [1, 1, 1]
        periodic = [k for k in range(3) if atoms.pbc[k]]
        for k, n in zip(periodic, s.kpts, strict=False):
            kpts[k] = n
        options = dict(
            mode="fd", h=s.h, xc=s.xc, kpts=kpts, charge=s.charge,
            occupations=FermiDirac(s.smearing),
            convergence={"energy": s.energy_tol, "density": s.density_tol},
            txt=None,
        )
        strength = float(np.linalg.norm(efield))
        if strength > 0:
            options["external"] = ConstantElectricField(strength, efield / strength)
        work = atoms.copy()
        work.calc = GPAW(**options)
        try:
            energy = work.get_potential_energy()
            out = {
                "efield": efield.copy(),
                "total_charge": np.array(float(s.charge)),
                "energy": np.array(energy),
            }
            if "forces" in props:
                out["forces"] = work.get_forces()
            if "dipole" in props:
                out["dipole"] = np.asarray(work.calc.get_dipole_moment(), dtype=float)
        except Exception as exc:  # noqa: BLE001 - GPAW raises many kinds on SCF trouble
            raise BackendError(f"GPAW failed: {type(exc).__name__}: {exc}") from None
        if "energy" not in props:
            del out["energy"]
        return out
