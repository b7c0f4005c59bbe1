"""The geometries of the metal-surface dataset: slabs, adatom sites, hop paths, thermal
displacements (ASE only; no DFT here).

What a surface scientist may change: the PBE lattice constants (:data:`LATTICE`), the
vacuum and slab thickness, the adatom sites of each hop (:data:`HOPS`, fractional
coordinates of the primitive surface cell with the adatom height) and the Einstein
temperatures of the thermal displacements. Cu hop paths are a climbing-image NEB with
ASE's EMT potential (only to place the atoms: the dataset's labels are DFT); W has no EMT
parameters, so its path is the straight line between sites, each point lifted to 0.95 of
the bulk bond from its nearest surface atom. :mod:`fieldforce.datasets.make_metal`
samples and labels these; :mod:`fieldforce.datasets.relax` relaxes them with DFT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

#: PBE lattice constants, Å
LATTICE = {"Cu": 3.63, "W": 3.17}
VACUUM = 6.0  # Å of vacuum on each side of the slab
LAYERS = 3
#: Einstein temperatures (K) for the thermal displacements
EINSTEIN = {"Cu": 240.0, "W": 230.0}


def clean_slab(system: str, size: tuple[int, int] = (2, 2), layers: int = LAYERS,
               vacuum: float = VACUUM) -> Atoms:
    """The clean slab of ``system`` with ``vacuum`` Å each side, bottom layer fixed."""
    from ase.build import bcc110, fcc100, fcc111

    build = {"Cu(100)": fcc100, "Cu(111)": fcc111, "W(110)": bcc110}[system]
    element = system.split("(")[0]
    slab = build(element, size=(*size, layers), a=LATTICE[element], vacuum=vacuum)
    slab.info.pop("adsorbate_info", None)
    slab.set_constraint(FixAtoms(mask=slab.get_tags() == layers))
    slab.pbc = (True, True, False)
    return slab


def with_adatom(slab: Atoms, system: str, site: tuple[float, float], height: float,
                 vacuum: float = VACUUM) -> Atoms:
    """``slab`` plus an adatom at fractional surface position ``site`` (of the primitive
    surface cell), ``height`` Å above the top layer, with ``vacuum`` Å each side; the
    bottom layer (largest tag) fixed."""
    element = system.split("(")[0]
    top = slab.positions[:, 2].max()
    cell = slab.cell.array
    n = surface_size(cell, system)[0]
    xy = (site[0] * cell[0] + site[1] * cell[1]) / n
    atoms = slab.copy()
    atoms += Atoms(element, positions=[[xy[0], xy[1], top + height]])
    atoms.set_tags([*slab.get_tags(), 0])
    atoms.set_constraint(FixAtoms(mask=atoms.get_tags() == slab.get_tags().max()))
    return recentre(atoms, vacuum)


def primitive_cell(system: str) -> np.ndarray:
    one = clean_slab(system, size=(1, 1), layers=1)
    return one.cell.array[:2]


def surface_size(cell: np.ndarray, system: str) -> tuple[int, int]:
    """How many primitive surface cells of ``system`` a slab ``cell`` spans along a and b."""
    return tuple(int(round(n)) for n in np.linalg.norm(np.asarray(cell)[:2], axis=1)
                 / np.linalg.norm(primitive_cell(system), axis=1))


def recentre(atoms: Atoms, vacuum: float = VACUUM) -> Atoms:
    """``vacuum`` Å above the highest and below the lowest atom (keeps constraints)."""
    z = atoms.positions[:, 2]
    atoms.positions[:, 2] += vacuum - z.min()
    cell = atoms.cell.array.copy()
    cell[2] = [0, 0, np.ptp(z) + 2 * vacuum]
    atoms.set_cell(cell)
    return atoms


#: adatom sites (fractional, primitive surface cell) and heights (Å) of each hop:
#: initial, saddle, final. Cu: relaxed and refined by NEB with EMT.
HOPS = {
    "Cu(100)": ((0.5, 0.5), (1.0, 0.5), (1.5, 0.5), 1.6),
    "Cu(111)": ((1 / 3, 1 / 3), (0.5, 0.5), (2 / 3, 2 / 3), 2.0),
    "W(110)": ((0.375, 0.25), (0.0, 0.5), (-0.375, 0.75), 2.0),
}


def hop_path(system: str, images: int = 7, size: tuple[int, int] = (2, 2)) -> list[Atoms]:
    """``images`` structures along the adatom hop, initial to final, on a ``size`` surface
    cell: a climbing-image NEB with EMT for Cu, a straight line at a fixed height for W."""
    initial, saddle, final, height = HOPS[system]
    slab = clean_slab(system, size=size)
    ends = [with_adatom(slab, system, site, height) for site in (initial, final)]
    if not system.startswith("Cu"):
        # the straight line, each point lifted until its nearest surface atom is 0.95 of
        # the bulk nearest-neighbour distance away
        element = system.split("(")[0]
        bond = 0.95 * LATTICE[element] * np.sqrt(3) / 2
        path = []
        for t in np.linspace(0, 1, images):
            a = ends[0].copy()
            a.positions = (1 - t) * ends[0].positions + t * ends[1].positions
            a.positions[-1, 2] = a.positions[:-1, 2].max()
            lateral = a.get_distances(-1, range(len(a) - 1), mic=True)
            a.positions[-1, 2] += np.sqrt(max(bond**2 - lateral.min() ** 2, 1.0))
            path.append(recentre(a))
        return path
    from ase.calculators.emt import EMT
    from ase.mep import NEB
    from ase.optimize import BFGS, FIRE

    for end in ends:
        end.calc = EMT()
        BFGS(end, logfile=None).run(fmax=0.01, steps=300)
    path = [ends[0]] + [ends[0].copy() for _ in range(images - 2)] + [ends[1]]
    for image in path[1:-1]:
        image.calc = EMT()
    neb = NEB(path, climb=True, method="improvedtangent")
    neb.interpolate()
    FIRE(neb, logfile=None).run(fmax=0.02, steps=1000)
    return [recentre(plain_copy(a)) for a in path]


def plain_copy(atoms: Atoms) -> Atoms:
    out = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
                tags=atoms.get_tags())
    out.set_constraint([c.copy() for c in atoms.constraints])
    return out


def thermal(atoms: Atoms, temperature: float, rng: np.random.Generator) -> Atoms:
    """Einstein-model thermal displacements of the free atoms at ``temperature`` K:
    independent Gaussians of variance kT / (m w²) per direction (classical)."""
    from ase.units import _amu, _hbar, _k

    out = atoms.copy()
    fixed = np.zeros(len(out), bool)
    for c in out.constraints:
        fixed[c.index] = True
    element = out.get_chemical_symbols()[0]
    omega = _k * EINSTEIN[element] / _hbar
    masses = out.get_masses()[:, None] * _amu
    sigma = np.sqrt(_k * temperature / (masses * omega**2)) * 1e10  # Å
    step = rng.normal(size=(len(out), 3)) * sigma
    step[fixed] = 0.0
    out.positions = out.positions + step
    return out


#: file stem of each system's hop end states in examples/metal
HOP_FILES = {"Cu(100)": "cu100", "Cu(111)": "cu111", "W(110)": "w110"}


def write_hops(folder: Path, size: tuple[int, int] = (3, 3)) -> list[Path]:
    """The initial and final states of each system's adatom hop on a ``size`` cell (EMT
    relaxed for Cu; W placed at the hollow sites, unrelaxed), as extxyz with the bottom
    layer fixed (``move_mask``)."""
    import ase.io

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for system, stem in HOP_FILES.items():
        path = hop_path(system, images=3, size=size)
        for atoms, end in ((path[0], "initial"), (path[-1], "final")):
            target = folder / f"{stem}_hop_{end}.xyz"
            atoms = atoms.copy()
            atoms.info = {"system": system, "hop_end": end}
            ase.io.write(target, atoms, format="extxyz")
            written.append(target)
    return written


__all__ = ["EINSTEIN", "HOPS", "HOP_FILES", "LATTICE", "LAYERS", "VACUUM", "clean_slab",
           "hop_path", "plain_copy", "primitive_cell", "recentre", "surface_size", "thermal",
           "with_adatom", "write_hops"]
