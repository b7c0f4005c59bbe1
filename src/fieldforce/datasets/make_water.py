"""Regenerate the shipped water dataset: sample geometries, then label them with DFT.

Run (the shipped file was made exactly so, see ``water_meta.json``)::

    python -m fieldforce.datasets.make_water sample  --out water_unlabelled.xyz
    python -m fieldforce.datasets.make_water label   water_unlabelled.xyz water.xyz.gz --workers 16
    python -m fieldforce.datasets.make_water finish  water.xyz.gz --cost label_cost.json

``sample`` relaxes the monomer and computes its normal modes with the same
level of theory as the labels (a minute on 2 cores), then draws monomers,
dimers and trimers at temperatures of 300-600 K (see
:mod:`fieldforce.datasets.water_sampling`) and gives a subset of them a random
uniform field of 0.01-0.1 V/Å. ``label`` is ``fieldforce label`` with the
dataset's settings, resumable like any labelling job. ``finish`` writes
``water_meta.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.optimize import BFGS

from fieldforce.data.atomic import write_json
from fieldforce.data.frame import Frame
from fieldforce.datasets import water_sampling as ws
from fieldforce.reference.labelling import add_label_command, run_label_command

#: Level of theory of the shipped data. A diffuse basis (aug-) is needed for
#: polarizabilities: without it alpha of water is ~30 % too small.
SETTINGS = {"xc": "PBE0", "basis": "aug-cc-pvdz"}
PROPERTIES = ("energy", "forces", "dipole", "polarizability", "born_charges")
#: Structures per kind at zero field, and how many more at a finite field.
COUNTS = {"monomer": 300, "dimer": 200, "trimer": 30}
FIELD_COUNTS = {"monomer": 60, "dimer": 30, "trimer": 0}
TEMPERATURES = (300.0, 400.0, 500.0, 600.0)
FIELD_RANGE = (0.01, 0.1)  # V/Å
SEED = 20261122


def _backend():
    from fieldforce.reference.backend import get_backend

    return get_backend("pyscf", **SETTINGS)


def _forces_fn(backend):
    def forces(atoms: Atoms) -> np.ndarray:
        return backend.label(atoms, np.zeros(3), {"energy", "forces"})["forces"]

    return forces


def relaxed_monomer(backend) -> Atoms:
    """The monomer relaxed at the labels' level of theory (fmax 1e-3 eV/Å)."""
    from ase.calculators.calculator import Calculator, all_changes

    class _Adapter(Calculator):
        # ASE's optimizer asks a calculator for energy and forces.
        implemented_properties = ["energy", "free_energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            out = backend.label(self.atoms, np.zeros(3), {"energy", "forces"})
            energy = float(out["energy"])
            self.results = {"energy": energy, "free_energy": energy, "forces": out["forces"]}

    atoms = Atoms("OH2", positions=[[0, 0, 0.1173], [0, 0.7572, -0.4692], [0, -0.7572, -0.4692]])
    atoms.calc = _Adapter()
    BFGS(atoms, logfile=None).run(fmax=1e-3, steps=100)
    return Atoms("OH2", positions=atoms.positions - atoms.get_center_of_mass())


def sample(out: Path, seed: int = SEED) -> dict:
    """Draw every geometry of the dataset; writes an unlabelled canonical extxyz."""
    from fieldforce.data.io import write_frames

    backend = _backend()
    monomer = relaxed_monomer(backend)
    eigenvalues, modes = ws.normal_modes(monomer, _forces_fn(backend))
    rng = np.random.default_rng(seed)
    frames: list[Frame] = []
    for kind, n_molecules in (("monomer", 1), ("dimer", 2), ("trimer", 3)):
        total = COUNTS[kind] + FIELD_COUNTS[kind]
        per_t = int(np.ceil(total / len(TEMPERATURES)))
        drawn: list[tuple[Atoms, float]] = []
        for temperature in TEMPERATURES:
            if n_molecules == 1:
                rigid = [monomer] * per_t
            else:
                rigid = ws.sample_clusters(monomer, n_molecules, per_t, temperature, rng)
            for cluster in rigid:
                distorted = ws.distort_cluster(
                    cluster, monomer, eigenvalues, modes, temperature, rng
                )
                drawn.append((ws.random_orientation(distorted, rng), temperature))
        order = rng.permutation(len(drawn))[:total]
        for rank, i in enumerate(order):
            atoms, temperature = drawn[i]
            atoms.info.update(config_type=kind, temperature=temperature)
            labels = {}
            if rank >= COUNTS[kind]:
                direction = rng.normal(size=3)
                strength = rng.uniform(*FIELD_RANGE)
                labels["efield"] = strength * direction / np.linalg.norm(direction)
            frames.append(Frame(atoms, labels))
    write_frames(frames, out)
    return {
        "monomer_wavenumbers_cm-1": ws.wavenumbers(eigenvalues).round(1).tolist(),
        "monomer_geometry_angstrom": monomer.positions.round(6).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fieldforce.datasets.make_water")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("sample", help="draw geometries")
    p.add_argument("--out", type=Path, default=Path("water_unlabelled.xyz"))
    p.add_argument("--seed", type=int, default=SEED)
    add_label_command(sub, workers=2)
    p = sub.add_parser("finish", help="write water_meta.json next to the labelled file")
    p.add_argument("labelled", type=Path)
    p.add_argument("--sampling", type=Path, default=None,
                   help="water_sampling.json written by `sample` (default: next to LABELLED)")
    p.add_argument("--cost", type=Path, default=None)
    args = parser.parse_args(argv)

    if args.step == "sample":
        info = sample(args.out, args.seed)
        info.update(
            seed=args.seed, temperatures_K=list(TEMPERATURES), field_range_V_per_A=FIELD_RANGE
        )
        sampling = args.out.parent / "water_sampling.json"
        write_json(info, sampling)
        print(f"wrote {args.out} and {sampling}")
        return 0
    if args.step == "label":
        return run_label_command(args, _backend(), PROPERTIES)
    return _finish(args)


def _finish(args) -> int:
    from fieldforce.data.io import read_frames

    frames = read_frames(args.labelled)
    sampling = args.sampling or args.labelled.parent / "water_sampling.json"
    counts: dict[str, int] = {}
    for f in frames:
        kind = f.atoms.info.get("config_type", "?")
        key = kind + ("_field" if abs(f.efield).max() > 0 else "")
        counts[key] = counts.get(key, 0) + 1
    meta = {
        "level_of_theory": _backend().settings()
        | {"code": "PySCF", "field_coupling": "+E.r on electrons, -Z E.R on nuclei, origin 0"},
        "properties": list(PROPERTIES),
        "counts": counts,
        "sampling": json.loads(sampling.read_text()) if sampling.exists() else {},
        "commands": [
            "python -m fieldforce.datasets.make_water sample --out water_unlabelled.xyz",
            "python -m fieldforce.datasets.make_water label water_unlabelled.xyz water.xyz.gz "
            "--workers 16",
            "python -m fieldforce.datasets.make_water finish water.xyz.gz",
        ],
    }
    if args.cost is not None and args.cost.exists():
        meta["labelling_cost"] = json.loads(args.cost.read_text())
    out = args.labelled.parent / "water_meta.json"
    write_json(meta, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from fieldforce.errors import report_errors

    sys.exit(report_errors("python -m fieldforce.datasets.make_water", main,
                           interrupted="; rerun the same command to continue"))
