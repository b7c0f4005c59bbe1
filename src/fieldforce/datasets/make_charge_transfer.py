"""Regenerate the charge-transfer dataset: molecules and clusters where non-local charge
transfer decides the answer, in several charge states and fields, labelled with PySCF.

Run (resumable like any labelling job; ``--max-hours`` stops cleanly, rerun to go on)::

    python -m fieldforce.datasets.make_charge_transfer sample --out ct_unlabelled.xyz
    python -m fieldforce.datasets.make_charge_transfer label ct_unlabelled.xyz \\
        charge_transfer.xyz.gz [--workers 16] [--max-hours H]
    python -m fieldforce.datasets.make_charge_transfer finish charge_transfer.xyz.gz

Systems (``config_type``):

* ``chain`` / ``chain_protonated``: the polyyne C10H2 and C10H3+ (a proton added to one
  end, which becomes a CH2 group), the classic test of charge-equilibration networks: the
  protonation changes the charges at the *other* end, 12 Å away, which no local charge
  model can see. Thermal displacements (Gaussian, 0.04-0.08 Å per Cartesian component)
  of a standard geometry (C-H 1.06, C≡C 1.21, C-C 1.36 Å; the CH2 end sp2, H-C-H 117°).
* ``nacl``: Na4Cl4 (a rock-salt cube, Na-Cl 2.65 Å) and its cation Na4Cl3+ and anion
  Na3Cl4-, displaced by 0.08 Å: ionic clusters in three charge states.
* ``sodium``: Na2, Na4 (a rhombus), Na6 and Na8 clusters (nearest neighbours ~3.4 Å), whose
  polarizability grows like a conductor's, and ``sodium_water``: Na8 with a water
  molecule at 2.4 Å (O-Na).

A third of the frames of every kind are in a uniform field of 0.01-0.05 V/Å (random
direction; along the chain for the chains, where the response is largest). Labels:
energy, forces, dipole, polarizability, Born charges, meta-Löwdin charges; each frame's
``total_charge`` sets its charge state. Level of theory :data:`SETTINGS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ase import Atoms

from fieldforce.data.atomic import write_json
from fieldforce.data.frame import Frame
from fieldforce.reference.labelling import add_label_command, run_label_command

#: PBE with def2-SVPD (diffuse functions for the polarizabilities and anions) and
#: density fitting
SETTINGS = {"xc": "PBE", "basis": "def2-svpd", "density_fit": True, "field_step": 0.02}
PROPERTIES = ("energy", "forces", "dipole", "polarizability", "born_charges", "charges")
#: frames per kind, in labelling order (the chains first: the headline test); a chain
#: frame costs ~10 min on one (shared) core
COUNTS = {"chain": 16, "chain_protonated": 16, "nacl": 8, "nacl_cation": 8,
          "nacl_anion": 8, "sodium": 8, "sodium_water": 8}
FIELD_RANGE = (0.01, 0.05)  # V/Å
FIELD_FRACTION = 1 / 3
SEED = 20261204


def polyyne(protonated: bool = False, carbons: int = 10) -> Atoms:
    """H-(C≡C)5-H along z (C10H2), or C10H3+ with the first carbon an sp2 CH2 group."""
    z, positions = 0.0, []
    for k in range(carbons):
        positions.append([0.0, 0.0, z])
        z += 1.21 if k % 2 == 0 else 1.36
    carbon = np.array(positions)
    end = [[0.0, 0.0, carbon[-1, 2] + 1.06]]
    if protonated:
        # CH2 end: both H in the xz plane at 121.5° from the C1-C2 bond, 1.09 Å; the
        # first C-C bond lengthens toward a double bond
        carbon[1:] += [0.0, 0.0, 0.1]
        angle = np.radians(180 - 121.5)
        start = [[s * 1.09 * np.sin(angle), 0.0, -1.09 * np.cos(angle)] for s in (1, -1)]
    else:
        start = [[0.0, 0.0, -1.06]]
    hydrogens = np.array(start + end)
    return Atoms(f"C{carbons}H{len(hydrogens)}", positions=np.vstack([carbon, hydrogens]))


def nacl_cube(remove: str | None = None) -> Atoms:
    """Na4Cl4 on a cube of edge 2.65 Å; ``remove`` "Na" or "Cl" drops one of that kind."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    symbols = ["Na" if (c.sum() % 2 == 0) else "Cl" for c in corners]
    atoms = Atoms(symbols, positions=2.65 * corners)
    if remove is not None:
        del atoms[[a.index for a in atoms if a.symbol == remove][0]]
    return atoms


def sodium_cluster(n: int) -> Atoms:
    """A compact Na_n (n = 2, 6, 8: from bcc Na, a = 4.23 Å, NN 3.66 Å, contracted by 7 %
    as small clusters are; n = 4: the planar rhombus, Na4's ground state, sides 3.40 Å and
    short diagonal 3.10 Å: the tetrahedral bcc fragment has a degenerate HOMO, on which a
    closed-shell SCF does not converge to an aufbau state)."""
    if n == 4:
        half_long = np.sqrt(3.40**2 - 1.55**2)
        return Atoms("Na4", positions=[[half_long, 0, 0], [-half_long, 0, 0],
                                       [0, 1.55, 0], [0, -1.55, 0]])
    sites = {2: [[0, 0, 0], [.5, .5, .5]],
             6: [[0, 0, 0], [.5, .5, .5], [1, 0, 0], [.5, -.5, .5], [.5, .5, -.5],
                 [.5, -.5, -.5]],
             8: [[0, 0, 0], [.5, .5, .5], [1, 0, 0], [.5, -.5, .5], [.5, .5, -.5],
                 [.5, -.5, -.5], [1, 1, 0], [0, 1, 0]]}[n]
    return Atoms(f"Na{n}", positions=0.93 * 4.23 * np.array(sites, float))


def sodium_water() -> Atoms:
    """Na8 with a water molecule bound through its O at 2.4 Å from the nearest Na."""
    cluster = sodium_cluster(8)
    centre = cluster.positions.mean(0)
    nearest = cluster.positions[np.argmax(np.linalg.norm(cluster.positions - centre, axis=1))]
    out = (nearest - centre) / np.linalg.norm(nearest - centre)
    oxygen = nearest + 2.4 * out
    side = np.cross(out, [0.3, 0.5, 0.81])
    side /= np.linalg.norm(side)
    # H-O-H 104.5°, 0.97 Å, the H pointing away from the cluster
    half = np.radians(104.5 / 2)
    h = [oxygen + 0.97 * (np.cos(half) * out + s * np.sin(half) * side) for s in (1, -1)]
    return cluster + Atoms("OH2", positions=[oxygen, *h])


def _kinds() -> dict[str, tuple[list[Atoms], float, float]]:
    """kind -> (base structures, net charge, displacement scale Å)."""
    return {
        "chain": ([polyyne(False)], 0.0, 0.06),
        "chain_protonated": ([polyyne(True)], 1.0, 0.06),
        "nacl": ([nacl_cube()], 0.0, 0.08),
        "nacl_cation": ([nacl_cube("Cl")], 1.0, 0.08),
        "nacl_anion": ([nacl_cube("Na")], -1.0, 0.08),
        "sodium": ([sodium_cluster(n) for n in (2, 4, 6, 8)], 0.0, 0.08),
        "sodium_water": ([sodium_water()], 0.0, 0.06),
    }


def sample(out: Path, seed: int = SEED) -> dict:
    """Every geometry of the dataset in labelling order; writes an unlabelled extxyz."""
    from fieldforce.data.io import write_frames

    rng = np.random.default_rng(seed)
    frames = []
    for kind, (bases, charge, scale) in _kinds().items():
        count = COUNTS[kind]
        for k in range(count):
            base = bases[k % len(bases)]
            atoms = base.copy()
            atoms.positions += rng.normal(scale=scale * rng.uniform(2 / 3, 4 / 3),
                                          size=atoms.positions.shape)
            atoms.positions -= atoms.positions.mean(0)
            labels = {"total_charge": np.array(charge)}
            if k >= count - round(FIELD_FRACTION * count):
                if kind.startswith("chain"):
                    direction = np.array([0.0, 0.0, rng.choice((-1.0, 1.0))])
                else:
                    direction = rng.normal(size=3)
                    direction /= np.linalg.norm(direction)
                labels["efield"] = rng.uniform(*FIELD_RANGE) * direction
            atoms.info.update(config_type=kind, formula=atoms.get_chemical_formula())
            frames.append(Frame(atoms, labels))
    write_frames(frames, out)
    counts = {kind: COUNTS[kind] for kind in COUNTS}
    return {"frames": len(frames), "counts": counts}


def _backend():
    from fieldforce.reference.backend import get_backend

    return get_backend("pyscf", **SETTINGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fieldforce.datasets.make_charge_transfer")
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("sample", help="build the geometries")
    p.add_argument("--out", type=Path, default=Path("ct_unlabelled.xyz"))
    p.add_argument("--seed", type=int, default=SEED)
    add_label_command(sub)
    p = sub.add_parser("finish", help="write charge_transfer_meta.json beside the labels")
    p.add_argument("labelled", type=Path)
    args = parser.parse_args(argv)
    if args.step == "sample":
        info = sample(args.out, args.seed)
        print(json.dumps(info | {"seed": args.seed}, indent=1))
        return 0
    if args.step == "label":
        return run_label_command(args, _backend(), PROPERTIES)
    from fieldforce.data.io import read_frames

    frames = read_frames(args.labelled)
    counts: dict[str, int] = {}
    for f in frames:
        kind = f.atoms.info.get("config_type", "?")
        counts[kind] = counts.get(kind, 0) + 1
    meta = {"level_of_theory": _backend().settings() | {"code": "PySCF"},
            "charges": "meta-Löwdin populations", "properties": list(PROPERTIES),
            "frames": len(frames), "counts": counts, "seed": SEED,
            "commands": [
                "python -m fieldforce.datasets.make_charge_transfer sample --out "
                "ct_unlabelled.xyz",
                "python -m fieldforce.datasets.make_charge_transfer label ct_unlabelled.xyz "
                "charge_transfer.xyz.gz",
                "python -m fieldforce.datasets.make_charge_transfer finish "
                "charge_transfer.xyz.gz"]}
    out = args.labelled.parent / "charge_transfer_meta.json"
    write_json(meta, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from fieldforce.errors import report_errors

    sys.exit(report_errors("python -m fieldforce.datasets.make_charge_transfer", main,
                           interrupted="; rerun the same command to continue"))
