"""Cost of one MD step of the response model (energy + forces + dipole) for water boxes.

    python benchmarks/response_speed.py [--model runs/demo/training/model.pt]

Systems: periodic boxes of 8, 32, 64 and 256 water molecules (24, 96, 192, 768
atoms) at 1 g/cm³, molecules from the shipped data on a cubic grid with random
orientations, in a uniform field of 0.1 V/Å (so the dipole and polarizability
terms and their forces are computed). Reported: seconds per step (best of
``--repeat`` after a warm-up) and atom-steps per second; and, as the peer
measured on the same machine, the DFT labelling cost per structure from
benchmarks/results/label_cost.json (PBE0/aug-cc-pVDZ, energy + forces + dipole,
the same properties): how many orders of magnitude one model step on N atoms is
cheaper than DFT on a cluster of similar size. Writes
benchmarks/results/response_speed.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def water_box(n_molecules: int, seed: int = 0):
    from ase import Atoms
    from scipy.spatial.transform import Rotation

    from fieldforce.datasets import load_water

    monomer = load_water("monomer")[0].atoms
    per_side = int(np.ceil(n_molecules ** (1 / 3)))
    volume = n_molecules * 18.015 / 0.6022  # Å³ at 1 g/cm³
    side = volume ** (1 / 3)
    spacing = side / per_side
    rng = np.random.default_rng(seed)
    centre = monomer.positions - monomer.get_center_of_mass()
    positions, symbols = [], []
    sites = [(i, j, k) for i in range(per_side) for j in range(per_side)
             for k in range(per_side)][:n_molecules]
    for site in sites:
        rot = Rotation.random(random_state=rng).as_matrix()
        positions.append(centre @ rot.T + (np.array(site) + 0.5) * spacing)
        symbols += monomer.get_chemical_symbols()
    return Atoms(symbols, positions=np.concatenate(positions), cell=[side] * 3, pbc=True)


def main() -> None:
    import torch

    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.models import build_model, evaluate, load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "demo" / "training" /
                        "model.pt")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "response_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.model.exists():
        model, source = load_model(args.model), str(args.model)
    else:  # timing does not depend on the weights
        model, source = build_model({"species": [1, 8]}), "untrained (same architecture)"
    label = json.loads((ROOT / "benchmarks" / "results" / "label_cost.json").read_text())
    dft = {r["kind"]: r for r in label["rows"] if r["properties"] == "energy,forces,dipole"}
    field = torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    rows = []
    print(f"{'atoms':>6s}{'s/step':>10s}{'atom-steps/s':>14s}{'U0 only s':>14s}")
    for n_mol in (8, 32, 64, 256):
        batch = batch_from_atoms(water_box(n_mol))
        evaluate(model, batch, field=field)  # warm-up
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = evaluate(model, batch, field=field)
            out["dipole"].detach()
            times.append(time.perf_counter() - t0)
        # the same step without the response heads (energy + forces of U0 only): the
        # share of the lambda-SOAP features and the field terms in the cost
        evaluate(model, batch, response=False)
        times_u0 = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            evaluate(model, batch, response=False)
            times_u0.append(time.perf_counter() - t0)
        n = 3 * n_mol
        row = {"atoms": n, "seconds_per_step": min(times), "atom_steps_per_second": n / min(times),
               "seconds_per_step_energy_forces_only": min(times_u0)}
        rows.append(row)
        print(f"{n:6d}{row['seconds_per_step']:10.4f}{row['atom_steps_per_second']:14.0f}"
              f"{min(times_u0):14.4f}", flush=True)
    ratios = {}
    for kind, atoms in (("monomer", 3), ("dimer", 6), ("trimer", 9)):
        if kind in dft:
            per_atom_dft = dft[kind]["seconds_mean"] / atoms
            per_atom_model = rows[0]["seconds_per_step"] / rows[0]["atoms"]
            ratios[kind] = {"dft_seconds": dft[kind]["seconds_mean"],
                            "dft_seconds_per_atom": per_atom_dft,
                            "orders_of_magnitude_per_atom":
                                float(np.log10(per_atom_dft / per_atom_model))}
    print("DFT (PBE0/aug-cc-pVDZ, E+F+mu) per atom vs one model step per atom (24-atom box):",
          {k: round(v["orders_of_magnitude_per_atom"], 1) for k, v in ratios.items()},
          "orders of magnitude")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": source, "rows": rows, "dft_ratio": ratios},
                                   indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
