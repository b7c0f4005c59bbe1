"""GPAW backend: periodic slabs (and molecules) in a uniform field along a vacuum direction.

GPAW runs in real space (``mode="fd"``, finite differences) or with atomic orbitals
(``mode="lcao"``, several times cheaper for metal slabs) with zero-potential
(Dirichlet) boundaries along every non-periodic direction; the field is a linear
external potential across the cell, ``gpaw.external.ConstantElectricField``
(positive strength along +z pushes positive charge to +z, F = qE).

**A slab in a box with grounded walls is a capacitor**
(:mod:`fieldforce.reference.slab_field`): the field its surfaces feel is
F = S + mu / (eps0 A L), not the applied strength S, so S is aimed at the field asked
(within ``field_tol``), and the energy whose field derivative is -mu at fixed F is the
enthalpy U = E_box - mu² / (2 eps0 A L). A slab's labels are therefore ``efield`` = F n
(the measured field, within ``field_tol`` of the requested one), ``energy`` = U,
``forces`` (unchanged: dU/dR at fixed F equals dE_box/dR at fixed S), ``dipole`` = mu n
and ``polarizability`` = alpha n nᵀ with alpha = d mu / dF from two more SCF runs at
S ± field_step (central differences). A periodic electron density has no in-plane
dipole: the in-plane components are stored as zero and losses and errors compare the
normal ones only (:func:`fieldforce.data.batch.physical_components`). The field is on
both vacuum sides, pointing out of the top surface and into the bottom one, so one slab
samples both signs of the surface charge; the bottom layers are the same in every
configuration of a surface process, so differences (barriers, dipole and
polarizability differences of an adatom) are those of the top surface.

Checks on every slab frame (a frame that fails is reported and left out):

* **Gauss's law**: the charge induced above the slab's midplane between the S ± step
  runs equals eps0 A dF, within ``gauss_tol`` (a metal screens the field before its
  middle; a thin or insulating slab fails) [with the polarizability];
* **net force**: a neutral structure in a uniform field feels none; the sum of the
  forces (grid egg-box and basis errors) must stay below ``net_force_tol``;
* **fixed layers**: atoms held by ``FixAtoms`` (extxyz ``move_mask``) must be the
  bottom ones along the normal.

Each labelled slab frame records ``field_applied`` (S, V/Å), ``field_corrections`` (SCF
runs spent aiming S), ``gauss_ratio``, the enthalpy with the other flavour of the energy
(``energy_extrapolated`` beside a free-energy label, eV: how ``make_metal reenergize``
shows a relabel repeats the old calculation) and ``scf_iterations`` (per SCF run, in
order: what the frame cost) in its info. A frame's runs after the first start from the
previous run's converged state (:class:`FieldSeries`).
Molecules (no periodicity) take a field in any direction; their polarizability comes
from central differences along x, y and z.

What the input must satisfy (checked, one clear error otherwise): a slab is periodic in
exactly two directions and the field is along the third, orthogonal to the slab; every
atom is at least ``min_vacuum`` Å from each non-periodic cell face.

Energies are relative to GPAW's reference atoms (consistent within this backend).
Born charges are not offered here: use the PySCF backend for molecules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from fieldforce.config import Section, option
from fieldforce.data.slab import surface_normal
from fieldforce.errors import BackendError
from fieldforce.reference.backend import Backend, check_properties, make_settings
from fieldforce.reference.slab_field import (
    FieldRun,
    SlabCapacitor,
    aim_field,
    check_fixed_layers,
    electrons_above,
)


@dataclass(kw_only=True)
class GPAWSettings(Section):
    """Numerical settings of the GPAW backend.

    Attributes
    ----------
    xc
        functional (libxc/GPAW name), e.g. "PBE", "LDA".
    mode
        "fd" (real-space grid) or "lcao" (atomic orbitals on the grid; several times
        cheaper, the basis set by ``basis``).
    basis
        LCAO basis (GPAW name, e.g. "dzp"); ignored in fd mode.
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
    field_step
        central-difference step in the field for the polarizability, V/Å.
    gauss_tol
        largest relative deviation from Gauss's law of a slab's induced surface charge.
    net_force_tol
        largest allowed |sum of the forces| of a neutral structure, eV/Å.
    field_tol
        largest accepted |field felt - field asked| of a slab, V/Å; each correction of
        the applied strength costs one more SCF run. Not part of the level of theory: a
        label made with another tolerance is reused if it meets this one.
    energy
        which of GPAW's energies is labelled. "free" (the default): the Mermin free energy
        E - TS of the smeared occupations, the variational functional whose position
        derivatives are the forces GPAW returns and whose field derivative is -mu, so
        energies, forces and dipoles are one consistent set. "extrapolated": GPAW's
        estimate of the zero-smearing energy (ASE's get_potential_energy() default), which
        is not what the forces differentiate: for a Cu(100) adatom slab between 0.06 and
        0.57 V/Å it misses dU/dF = -mu by 1.1 meV where the free energy misses by 0.3 meV
        (BENCHMARKS.md, issue 14); the shipped metal set was labelled with it (its
        make_metal settings say so) until it is relabelled.
    reuse_scf
        start each SCF run of a frame after its first from the previous run's converged
        density and wave functions (does not change the numbers beyond the SCF
        tolerance; see :class:`FieldSeries`). Off: every run starts from scratch.
    threads
        BLAS threads of the SCF runs (does not change the numbers). GPAW parallelises over
        MPI ranks; threaded BLAS on its small matrices costs more than it gives, and on a
        busy machine it is ruinous (the slab tests: 476 s with two threads against 66 s
        with one, on two cores with one other job running).
    """

    xc: str = option("PBE", "functional (libxc/GPAW name)")
    mode: str = option("fd", "fd (real-space grid) or lcao (atomic orbitals)",
                       choices=("fd", "lcao"))
    basis: str = option("dzp", "LCAO basis set (GPAW name); ignored in fd mode")
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
    field_step: float = option(0.05, "central-difference step in the field for the "
                               "polarizability, V/Å", exclusive_minimum=0)
    gauss_tol: float = option(0.05, "largest relative deviation from Gauss's law of a "
                              "slab's induced surface charge", exclusive_minimum=0)
    net_force_tol: float = option(0.2, "largest |sum of the forces| of a neutral "
                                  "structure, eV/Å", exclusive_minimum=0)
    field_tol: float = option(0.05, "largest |field felt - field asked| of a slab, V/Å "
                              "(beyond it the applied strength is corrected: one more SCF "
                              "run each time)", exclusive_minimum=0)
    energy: str = option("free", "the energy labelled: 'free' (Mermin's E - TS, variational: "
                         "what the forces and dU/dF = -mu differentiate) or 'extrapolated' "
                         "(to zero smearing)", choices=("free", "extrapolated"))
    reuse_scf: bool = option(True, "start a frame's later SCF runs (field corrections, "
                             "the polarizability's +- steps) from the previous run's "
                             "converged state: about half the iterations, same result")
    threads: int = option(1, "BLAS threads of the SCF runs", minimum=1)


class GPAWBackend(Backend):
    """Finite-field DFT of slabs and molecules with GPAW (see the module docstring)."""

    name = "gpaw"
    properties = ("energy", "forces", "dipole", "polarizability")
    max_field = 5.0
    max_field_reason = "field evaporation of most metal surfaces sets in below it"
    aiming_settings = ("field_tol",)
    execution_settings = ("threads", "reuse_scf")
    # the labels before the energy setting (2026-12-05) hold the extrapolated energy
    legacy_settings = {"energy": "extrapolated"}
    #: most corrections of a slab's applied strength before giving up
    max_corrections = 4

    def __init__(self, settings: GPAWSettings | None = None, **options) -> None:
        self.config = make_settings(GPAWSettings, settings, options, "GPAW")

    def validate(self, frames) -> None:
        """The functional is one GPAW can use and there is a PAW dataset (and, in LCAO
        mode, a basis) for every element."""
        from gpaw.setup import create_setup
        from gpaw.xc import XC

        try:
            xc = XC(self.config.xc)
        except Exception as exc:  # noqa: BLE001 - GPAW raises several types
            raise BackendError(f"GPAW settings: key 'xc': GPAW cannot use {self.config.xc!r} "
                               f"({str(exc).splitlines()[0]}); e.g. PBE, LDA, RPBE") from None
        from gpaw.basis_data import Basis

        lcao = self.config.mode == "lcao"
        for symbol in sorted({s for f in frames for s in f.atoms.get_chemical_symbols()}):
            try:
                create_setup(symbol, xc)
            except Exception as exc:  # noqa: BLE001
                raise BackendError(f"GPAW: no PAW dataset for {symbol} with {self.config.xc} "
                                   f"({str(exc).splitlines()[0]})") from None
            if lcao:
                try:
                    Basis.find(symbol, self.config.basis)
                except Exception as exc:  # noqa: BLE001
                    raise BackendError(
                        f"GPAW settings: key 'basis': no {self.config.basis!r} LCAO basis for "
                        f"{symbol} ({str(exc).splitlines()[0]}); e.g. dzp, szp") from None

    def accepts(self, labels: dict, requested: np.ndarray) -> bool:
        """A label is reused if the field it was made at is within ``field_tol`` of the one
        asked (a molecule's always is: its field is the applied one)."""
        felt = labels.get("efield")
        return felt is None or bool(
            np.abs(np.asarray(felt, float) - requested).max() <= self.config.field_tol)

    # -- geometry -------------------------------------------------------------

    def check_geometry(self, atoms: Atoms, efield: np.ndarray) -> None:
        """Raise BackendError unless the cell, vacuum, field and fixed atoms suit this
        backend."""
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
            if pbc[k] and abs(cell[k] @ cell[open_axes[0]]) > 1e-8:
                raise BackendError("the non-periodic cell vector must be orthogonal to the "
                                   "slab plane (the field is applied along it)")
        if pbc.any():
            normal = surface_normal(atoms, "a field along the normal")
            in_plane = efield - (efield @ normal) * normal
            if np.abs(in_plane).max() > 1e-12:
                raise BackendError(
                    f"the field must be along the slab normal (axis {'xyz'[open_axes[0]]}); "
                    f"got an in-plane component {np.round(in_plane, 6).tolist()} V/Å"
                )
            check_fixed_layers(atoms, normal)
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

    # -- labelling ------------------------------------------------------------

    def label(self, atoms: Atoms, efield, properties: Iterable[str],
              charge: float | None = None) -> dict:
        props = check_properties(properties)
        if charge is not None and abs(charge - self.config.charge) > 1e-9:
            raise BackendError(f"the structure's net charge is {charge:g} e but the gpaw "
                               f"backend's charge setting is {self.config.charge:g} e; label "
                               "each charge state with its own charge setting")
        unsupported = sorted(props - set(self.properties))
        if unsupported:
            raise BackendError(f"the gpaw backend computes {', '.join(self.properties)}; "
                               f"not {', '.join(unsupported)} (use the pyscf backend)")
        efield = np.asarray(efield, dtype=float).reshape(3)
        self.check_geometry(atoms, efield)
        try:
            if atoms.pbc.any():
                out = self._label_slab(atoms, efield, props)
            else:
                out = self._label_molecule(atoms, efield, props)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - GPAW raises many kinds on SCF trouble
            raise BackendError(f"GPAW failed: {type(exc).__name__}: {exc}") from None
        out["total_charge"] = np.array(float(self.config.charge))
        if "forces" in out:
            self._check_net_force(out["forces"])
        return {k: v for k, v in out.items()
                if k in props or k in ("efield", "total_charge", "info")}

    def _label_molecule(self, atoms: Atoms, efield: np.ndarray, props: set[str]) -> dict:
        run = FieldSeries(self, atoms)
        center = run(efield, forces="forces" in props)
        out = {"efield": efield.copy(), "energy": np.array(center.energy),
               "dipole": center.dipole, "info": {"scf_iterations": run.iterations}}
        if center.forces is not None:
            out["forces"] = center.forces
        if "polarizability" in props:
            h = self.config.field_step
            alpha = np.empty((3, 3))
            for b in range(3):
                step = h * np.eye(3)[b]
                plus, minus = (run(efield + s * step, forces=False) for s in (1, -1))
                alpha[:, b] = (plus.dipole - minus.dipole) / (2 * h)
            out["polarizability"] = 0.5 * (alpha + alpha.T)
        return out

    def _label_slab(self, atoms: Atoms, efield: np.ndarray, props: set[str]) -> dict:
        slab = SlabCapacitor.of(atoms)
        normal = slab.normal
        run = FieldSeries(self, atoms)
        center, applied, corrections = aim_field(
            lambda strength: run(strength * normal, forces="forces" in props),
            slab, float(efield @ normal), self.config.field_tol, self.max_corrections)
        out = {"efield": slab.felt(center) * normal,
               "energy": np.array(slab.enthalpy(center)),
               "dipole": float(center.dipole @ normal) * normal}
        if center.forces is not None:
            out["forces"] = center.forces
        other = "extrapolated" if self.config.energy == "free" else "free"
        info = {"field_applied": applied, "field_corrections": corrections,
                f"energy_{other}": slab.enthalpy(center, center.other_energy)}
        if "polarizability" in props:
            step = self.config.field_step / slab.enhancement
            plus, minus = (run((applied + sign * step) * normal, forces=False,
                               midplane=(slab.midplane, normal)) for sign in (1, -1))
            alpha = (float((plus.dipole - minus.dipole) @ normal)
                     / (slab.felt(plus) - slab.felt(minus)))
            out["polarizability"] = alpha * np.outer(normal, normal)
            ratio = slab.gauss_ratio(plus, minus)
            info["gauss_ratio"] = ratio
            if abs(ratio - 1) > self.config.gauss_tol:
                raise BackendError(
                    f"Gauss's law fails: the charge induced above the slab's midplane is "
                    f"{ratio:.3f} times eps0 A dF (tolerance {self.config.gauss_tol}); the "
                    "slab does not screen the field (too thin, too few k-points, or not a "
                    "metal)"
                )
        info["scf_iterations"] = run.iterations
        out["info"] = info
        return out

    def _check_net_force(self, forces: np.ndarray) -> None:
        net = forces.sum(axis=0)
        if self.config.charge == 0 and np.linalg.norm(net) > self.config.net_force_tol:
            raise BackendError(
                f"the forces sum to {np.round(net, 4).tolist()} eV/Å, not zero as for a "
                f"neutral structure in a uniform field (tolerance {self.config.net_force_tol}"
                " eV/Å): refine the grid spacing h"
            )

    def calculator(self, atoms: Atoms, strength: np.ndarray | None = None):
        """A GPAW calculator at this backend's level of theory for ``atoms`` (k-points
        along its periodic directions), in the applied field ``strength`` [3] V/Å (None:
        no field): for what labelling does not do, e.g. relaxing a structure with the
        dataset's own settings."""
        from gpaw import GPAW, FermiDirac
        from gpaw.external import ConstantElectricField

        s = self.config
        kpts = [1, 1, 1]
        periodic = [k for k in range(3) if atoms.pbc[k]]
        for k, n in zip(periodic, s.kpts, strict=False):
            kpts[k] = n
        options = dict(
            mode=s.mode, h=s.h, xc=s.xc, kpts=kpts, charge=s.charge,
            occupations=FermiDirac(s.smearing),
            convergence={"energy": s.energy_tol, "density": s.density_tol},
            txt=None,
        )
        if s.mode == "lcao":
            options["basis"] = s.basis
        strength = np.zeros(3) if strength is None else np.asarray(strength, dtype=float)
        magnitude = float(np.linalg.norm(strength))
        if magnitude > 0:
            options["external"] = ConstantElectricField(magnitude, strength / magnitude)
        return GPAW(**options)


class FieldSeries:
    """The SCF runs of one structure at a series of applied fields (the field
    corrections, then the polarizability's ± steps): ``series(strength, forces)`` is one
    converged run at the applied field ``strength`` [3] V/Å, a :class:`FieldRun`.

    GPAW's classic code (the one that takes ``ConstantElectricField``) discards density
    and wave functions whenever its ``external`` parameter changes, so every run of a
    frame would start from atomic guesses. Here the calculator lives for the whole
    series: from the second run on, the field object it holds is re-aimed and the SCF
    restarts from the converged state of the previous field, a few hundredths of a V/Å
    away. The result is the same within the SCF tolerance; the saving is about half the
    iterations of each later run (BENCHMARKS.md, issue 14). A run at zero applied field
    goes through GPAW's new code (no external potential at all, as before) and the next
    field run starts afresh; so does every run where ``reuse_scf`` is off or the
    calculator has no field object to re-aim.

    ``iterations``: SCF iterations of each run so far, in order.
    """

    def __init__(self, backend: GPAWBackend, atoms: Atoms) -> None:
        self.backend = backend
        self.atoms = atoms
        self.work: Atoms | None = None
        self.iterations: list[int] = []

    def __call__(self, strength, forces: bool,
                 midplane: tuple[float, np.ndarray] | None = None) -> FieldRun:
        from threadpoolctl import threadpool_limits

        s = self.backend.config
        strength = np.asarray(strength, dtype=float)
        if not self._reaim(strength):
            self.work = self.atoms.copy()
            self.work.set_constraint()
            self.work.calc = self.backend.calculator(self.atoms, strength)
        work = self.work
        with threadpool_limits(limits=s.threads):
            free = s.energy == "free"
            energy = float(work.get_potential_energy(force_consistent=free))
            # the other flavour costs nothing after the SCF
            other = float(work.get_potential_energy(force_consistent=not free))
            run = FieldRun(applied=strength.copy(), energy=energy,
                           forces=work.get_forces() if forces else None,
                           dipole=np.asarray(work.calc.get_dipole_moment(), dtype=float),
                           other_energy=other)
            if midplane is not None:
                # all-electron density on the coarse grid, electrons / Å³
                density = work.calc.get_all_electron_density(gridrefinement=1)
                run.electrons_above = electrons_above(density, work.cell.array, *midplane)
        self.iterations.append(int(work.calc.get_number_of_iterations()))
        return run

    def _reaim(self, strength: np.ndarray) -> bool:
        """Point the live calculator's field at ``strength`` and mark its SCF unconverged,
        keeping density and wave functions; False where there is nothing to re-aim (the
        first run, a zero-field run's new-code calculator, ``reuse_scf`` off, or a GPAW
        whose classic calculator no longer looks like this)."""
        from gpaw.external import ConstantElectricField

        if self.work is None or not self.backend.config.reuse_scf:
            return False
        calc = self.work.calc
        field = getattr(getattr(calc, "hamiltonian", None), "vext", None)
        magnitude = float(np.linalg.norm(strength))
        if (not isinstance(field, ConstantElectricField) or getattr(calc, "scf", None) is None
                or not hasattr(calc.scf, "reset")):
            return False
        direction = strength / magnitude if magnitude > 0 else field.direction_v
        # GPAW's own constructor converts the units; the potential on the grid is cached
        # in vext_g (and vext_q in plane-wave mode) until cleared
        field.__init__(magnitude, direction, field.tolerance)
        field.vext_g = None
        field.vext_q = None
        calc.scf.reset()
        calc.results = {}
        return True
