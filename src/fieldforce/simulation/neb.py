"""Migration barriers in a uniform field along the surface normal: ASE's climbing-image NEB
with any calculator, over a list of fields.

At each field F the two end states are relaxed at F first (a field moves the minima),
then the band between them is relaxed with the climbing image; the barrier is the
highest image's energy minus that of the relaxed initial state. The field is F n with
n the unit normal of the slab: along the non-periodic cell vector, i.e. out of the top
surface (where ``ase.build`` puts adsorbates) into the vacuum; positive F pulls
positive charge out of the surface.

The dipole and polarizability differences of the second-order formula
E_m(F) = E_m0 - dmu F - 1/2 dalpha F² are read from the calculator at the zero-field
path's initial state and saddle (see :func:`fieldforce.analysis.barriers.fit_barriers`
for the fit of E_m(F) they are compared with): the dipole along n directly, the
polarizability as the calculator's ``polarizability`` (n·alpha·n) where it offers one,
else as a central difference of the dipole in the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from fieldforce.data.slab import surface_normal
from fieldforce.errors import ConfigError, DataError

#: a calculator for a uniform field [3] V/Å
CalculatorFactory = Callable[[np.ndarray], object]


@dataclass
class FieldBarriers:
    """NEB barriers over fields, and the zero-field path's dipole and polarizability.

    fields [F] V/Å along ``normal``; barriers [F] eV; energies [F, I] eV of the images
    relative to the relaxed initial state; path_length [F, I] Å (cumulative distance of
    the images); saddle_index [F]; dmu e·Å and dalpha e·Å²/V: saddle minus initial state
    of the path at the field nearest zero (``reference_field``); paths: the relaxed
    images at every field.
    """

    fields: np.ndarray
    barriers: np.ndarray
    energies: np.ndarray
    path_length: np.ndarray
    saddle_index: np.ndarray
    normal: np.ndarray
    reference_field: float
    dmu: float
    dalpha: float
    dipoles: dict[str, float] = field(default_factory=dict)
    polarizabilities: dict[str, float] = field(default_factory=dict)
    converged: list[bool] = field(default_factory=list)
    paths: list[list[Atoms]] = field(default_factory=list, repr=False)


def _attach(atoms: Atoms, calc) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms


def _relax(atoms: Atoms, fmax: float, steps: int) -> tuple[Atoms, bool]:
    from ase.optimize import BFGS

    opt = BFGS(atoms, logfile=None)
    return atoms, bool(opt.run(fmax=fmax, steps=steps))


#: Atoms closer than this fraction of their covalent radii's sum mean a collapsed structure.
COLLAPSE_FRACTION = 0.5


def check_collapse(atoms: Atoms, what: str) -> None:
    """One clear error when two atoms of ``atoms`` came closer than ``COLLAPSE_FRACTION`` of
    their covalent radii's sum: an optimiser following a model that has no repulsion there
    (outside its training data) ends in such a structure and reports a meaningless barrier.
    ``what`` says which structure (field, end state or image) for the message."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2:
        return
    radii = covalent_radii[atoms.numbers]
    i, j, d = neighbor_list("ijd", atoms, 2 * COLLAPSE_FRACTION * float(radii.max()))
    bad = d < COLLAPSE_FRACTION * (radii[i] + radii[j])
    if bad.any():
        k = int(np.flatnonzero(bad)[np.argmin(d[bad])])
        symbols = atoms.get_chemical_symbols()
        raise DataError(
            f"{what}: atoms {i[k]} ({symbols[i[k]]}) and {j[k]} ({symbols[j[k]]}) came to "
            f"{d[k]:.3g} Å (their covalent radii add to {radii[i[k]] + radii[j[k]]:.2f} Å): "
            "the model has no repulsion there, i.e. the path left its training data; "
            "train on more varied structures (e.g. thermal displacements) or check the "
            "end states")


def field_barriers(make_calculator: CalculatorFactory, initial: Atoms, final: Atoms,
                   fields: Sequence[float], images: int = 7, fmax: float = 0.03,
                   steps: int = 1000, climb: bool = True,
                   progress: Callable[[str], None] | None = None) -> FieldBarriers:
    """Climbing-image NEB barriers of the hop ``initial`` -> ``final`` at each field.

    Parameters
    ----------
    make_calculator
        a fresh ASE calculator for a uniform field [3] V/Å (one per image).
    initial, final
        end states (same atoms in the same order; constraints such as fixed bottom
        layers are kept).
    fields
        field strengths along the surface normal, V/Å.
    images
        images including the two ends (>= 3).
    fmax, steps
        convergence of the end-state relaxations and of the band, eV/Å.
    """
    from ase.mep import NEB
    from ase.optimize import FIRE

    if len(initial) != len(final) or not np.array_equal(initial.numbers, final.numbers):
        raise ConfigError("the initial and final structures must have the same atoms in the "
                          f"same order ({len(initial)} vs {len(final)} atoms)")
    if images < 3:
        raise ConfigError(f"images must be at least 3 (the two ends and one between); "
                          f"got {images}")
    if len(fields) == 0:
        raise ConfigError("give at least one field")
    normal = surface_normal(initial, "a barrier in a normal field")
    fields = np.asarray(fields, dtype=float)
    rows, lengths, saddles, paths, converged = [], [], [], [], []
    for f in fields:
        vector = f * normal
        ends = []
        ok = True
        for name, end in (("initial", initial), ("final", final)):
            relaxed, done = _relax(_attach(end, make_calculator(vector)), fmax, steps)
            check_collapse(relaxed, f"the {name} state relaxed at F = {f:+g} V/Å")
            ends.append(relaxed)
            ok &= done
        band = [ends[0]] + [_attach(ends[0], make_calculator(vector))
                            for _ in range(images - 2)] + [ends[1]]
        neb = NEB(band, climb=climb, method="improvedtangent")
        neb.interpolate(mic=True)
        ok &= bool(FIRE(neb, logfile=None).run(fmax=fmax, steps=steps))
        for k, image in enumerate(band[1:-1], start=1):
            check_collapse(image, f"NEB image {k} at F = {f:+g} V/Å")
        energies = np.array([a.get_potential_energy() for a in band])
        rows.append(energies - energies[0])
        steps_between = [np.linalg.norm(b.positions - a.positions)
                         for a, b in zip(band[:-1], band[1:], strict=True)]
        lengths.append(np.concatenate([[0.0], np.cumsum(steps_between)]))
        saddles.append(int(np.argmax(energies)))
        paths.append([_attach(a, None) for a in band])
        converged.append(ok)
        if progress is not None:
            progress(f"F = {f:+.3f} V/Å: barrier {rows[-1].max():.4f} eV"
                     + ("" if ok else " (not converged)"))
    energies = np.array(rows)
    reference = int(np.argmin(np.abs(fields)))
    path = paths[reference]
    states = {"initial": path[0], "saddle": path[saddles[reference]]}
    step = 0.01
    dipoles, polar = {}, {}
    f0 = fields[reference]
    for name, atoms in states.items():
        dipoles[name] = _dipole(make_calculator, atoms, f0 * normal) @ normal
        polar[name] = _polarizability(make_calculator, atoms, f0, normal, step)
    return FieldBarriers(
        fields=fields, barriers=energies.max(axis=1), energies=energies,
        path_length=np.array(lengths), saddle_index=np.array(saddles), normal=normal,
        reference_field=float(f0),
        dmu=float(dipoles["saddle"] - dipoles["initial"]),
        dalpha=float(polar["saddle"] - polar["initial"]),
        dipoles={k: float(v) for k, v in dipoles.items()},
        polarizabilities={k: float(v) for k, v in polar.items()},
        converged=converged, paths=paths,
    )


def _dipole(make_calculator: CalculatorFactory, atoms: Atoms, vector: np.ndarray
            ) -> np.ndarray:
    atoms = _attach(atoms, make_calculator(vector))
    try:
        return np.asarray(atoms.calc.get_property("dipole", atoms), dtype=float)
    except Exception as exc:  # noqa: BLE001 - ASE raises several kinds
        raise ConfigError(f"the calculator gives no dipole ({exc}); dmu and dalpha need a "
                          "model with a dipole output") from None


def _polarizability(make_calculator: CalculatorFactory, atoms: Atoms, f0: float,
                    normal: np.ndarray, step: float) -> float:
    calc = make_calculator(f0 * normal)
    if "polarizability" in getattr(calc, "implemented_properties", ()):
        attached = _attach(atoms, calc)
        alpha = np.asarray(calc.get_property("polarizability", attached),
                           dtype=float).reshape(3, 3)
        return float(normal @ alpha @ normal)
    plus = _dipole(make_calculator, atoms, (f0 + step) * normal) @ normal
    minus = _dipole(make_calculator, atoms, (f0 - step) * normal) @ normal
    return float((plus - minus) / (2 * step))


__all__ = ["CalculatorFactory", "FieldBarriers", "field_barriers", "surface_normal"]
