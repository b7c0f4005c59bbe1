"""Cost of DFT labels per structure: the baseline that learned models are measured against.

    python benchmarks/label_cost.py [--threads 2] [--repeat 2] [--xc PBE0 --basis aug-cc-pvdz]

Times the PySCF backend (fieldforce's own labeller, default settings of the
shipped water data) on an H2O monomer, a water dimer and a trimer taken from the
shipped dataset, for two property sets: {energy, forces, dipole} (one SCF and
gradient) and + {polarizability, born_charges} (six more, at +-h per field
direction). Prints a table and writes benchmarks/results/label_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

PROPERTY_SETS = {
    "energy,forces,dipole": ("energy", "forces", "dipole"),
    "+polarizability,born_charges": ("energy", "forces", "dipole", "polarizability",
                                     "born_charges"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="structures timed per kind")
    parser.add_argument("--xc", default="PBE0")
    parser.add_argument("--basis", default="aug-cc-pvdz")
    parser.add_argument("--kinds", default="monomer,dimer,trimer")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "label_cost.json")
    args = parser.parse_args()

    from fieldforce.datasets import load_water
    from fieldforce.reference.backend import get_backend

    backend = get_backend("pyscf", xc=args.xc, basis=args.basis, threads=args.threads)
    frames = load_water(field=False)
    rows = []
    for kind in args.kinds.split(","):
        chosen = [f for f in frames if f.atoms.info.get("config_type") == kind][: args.repeat]
        for set_name, props in PROPERTY_SETS.items():
            times = []
            for frame in chosen:
                t0 = time.perf_counter()
                backend.label(frame.atoms, np.zeros(3), props)
                times.append(time.perf_counter() - t0)
            rows.append({"kind": kind, "atoms": len(chosen[0]), "properties": set_name,
                         "seconds_mean": float(np.mean(times)), "seconds_min": float(min(times)),
                         "n": len(times)})
            print(f"{kind:8s} {len(chosen[0]):3d} atoms  {set_name:30s} "
                  f"{np.mean(times):8.2f} s/structure (min {min(times):.2f}, n={len(times)})",
                  flush=True)
    result = {
        "settings": backend.settings() | {"threads": args.threads},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
