"""Which of GPAW's energies is the electric enthalpy of a metal slab? (issue 14)

    python benchmarks/metal_energy_flavour.py --system "Cu(100)"

A metal needs smeared occupations (Fermi-Dirac, 0.1 eV in the dataset). GPAW then has two
energies: the free energy E - TS (variational: the forces are its derivatives) and an
estimate of the zero-smearing energy (ASE's ``get_potential_energy()`` default, which the
shipped metal set holds). The enthalpy U(F) = E_box - mu²/(2 eps0 A L) obeys dU/dF = -mu
only if E_box is a variational energy. Two SCF runs of the shipped zero-field adatom
slab of ``--system`` at applied strengths 0 and ``--strength``, both energies from each,
and the residual of U2 - U1 = -(mu1 + mu2)(F2 - F1)/2 (meV; exact for U quadratic in F).
Writes ``benchmarks/results/metal_energy_flavour.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="Cu(100)")
    parser.add_argument("--strength", type=float, default=0.3, help="applied S, V/Å")
    parser.add_argument("--frames", type=Path, default=None,
                        help="take the zero-field adatom frame from this labelled file "
                             "instead of the shipped set (e.g. the relaxed W(110) minimum)")
    parser.add_argument("--out", type=Path, default=RESULTS / "metal_energy_flavour.json")
    args = parser.parse_args()
    from fieldforce.datasets import load_metal
    from fieldforce.datasets.make_metal import _backend
    from fieldforce.units import EPSILON0

    if args.frames is not None:
        from fieldforce.data.io import read_frames

        candidates = [f for f in read_frames(args.frames)
                      if f.atoms.info.get("system") == args.system]
    else:
        candidates = load_metal(args.system, "adatom_path")
    frame = next(f for f in candidates if abs(f.atoms.info["target_field"]) < 1e-9)
    atoms, backend = frame.atoms, _backend()
    cell = atoms.cell.array
    capacitance_length = EPSILON0 * np.linalg.norm(np.cross(cell[0], cell[1])) * cell[2, 2]
    runs = []
    for strength in (0.0, args.strength):
        start = time.perf_counter()
        work = atoms.copy()
        work.set_constraint()
        work.calc = backend.calculator(atoms, np.array([0.0, 0.0, strength]))
        extrapolated = work.get_potential_energy()
        free = work.get_potential_energy(force_consistent=True)
        mu = float(work.calc.get_dipole_moment()[2])
        enthalpy = mu**2 / (2 * capacitance_length)
        runs.append({"applied": strength, "felt": strength + mu / capacitance_length,
                     "dipole": mu, "U_extrapolated": extrapolated - enthalpy,
                     "U_free": free - enthalpy, "seconds": time.perf_counter() - start})
    one, two = runs
    predicted = -0.5 * (one["dipole"] + two["dipole"]) * (two["felt"] - one["felt"])
    residual = {k: 1000 * (two[f"U_{k}"] - one[f"U_{k}"] - predicted)
                for k in ("extrapolated", "free")}
    print(f"{args.system}: felt {one['felt']:.3f} -> {two['felt']:.3f} V/Å, "
          f"-mean(mu) dF = {1000 * predicted:.2f} meV")
    print("| energy | U2 - U1 + mean(mu) dF, meV |\n|---|---|")
    for k, v in residual.items():
        print(f"| {k} | {v:+.2f} |")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results[args.system + (" relaxed" if frame.atoms.info.get("relaxed") else "")] = {
        "frames": str(args.frames or "shipped"), "runs": runs, "predicted_eV": predicted,
                            "residual_meV": residual, "settings": backend.settings()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
