"""What restarting a frame's later SCF runs from the previous field saves (GPAW backend).

    python benchmarks/gpaw_warm_start.py --systems "Cu(100)" --field 0.5
    python benchmarks/gpaw_warm_start.py --systems "W(110)" --kpts 2 2   # ~1 h of a core

One metal dataset frame (the first adatom-path frame of each system) labelled twice at
the dataset's level of theory (``make_metal.SETTINGS``; ``--kpts`` overrides its k-mesh
for a cheaper comparison): with ``reuse_scf`` on (the default: the field corrections and
the polarizability's ± runs restart from the previous run's converged density and wave
functions, :class:`fieldforce.reference.gpaw_backend.FieldSeries`) and off (every run
from atomic guesses). Prints SCF iterations per run, wall time, and the differences of
the labels (they should be within the SCF tolerance); writes
``benchmarks/results/gpaw_warm_start.json`` (a run of some systems keeps the others).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def label_both(frame, field: float, kpts) -> dict:
    from fieldforce.datasets import make_metal

    out = {}
    for reuse in (True, False):
        backend = make_metal.dataset_backend(kpts=kpts, reuse_scf=reuse)
        start = time.perf_counter()
        labels = backend.label(frame.atoms, np.array([0.0, 0.0, field]),
                               make_metal.PROPERTIES)
        out[reuse] = {"seconds": time.perf_counter() - start, "labels": labels}
    return out


def main() -> None:
    from fieldforce.data.atomic import write_json
    from fieldforce.datasets import load_metal, make_metal

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", default=["Cu(100)"],
                        choices=make_metal.SYSTEMS)
    parser.add_argument("--field", type=float, default=0.5, help="target field, V/Å")
    parser.add_argument("--kpts", type=int, nargs=2, default=None,
                        help="k-points (default: the dataset's)")
    parser.add_argument("--out", type=Path, default=RESULTS / "gpaw_warm_start.json")
    args = parser.parse_args()
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    print(f"{'system':8s} {'reuse':>5s} {'SCF iterations per run':>24s} {'wall s':>8s}")
    for system in args.systems:
        frame = next(f for f in load_metal(system)
                     if f.atoms.info["config_type"] == "adatom_path")
        runs = label_both(frame, args.field, args.kpts)
        warm, cold = runs[True]["labels"], runs[False]["labels"]
        for reuse, run in runs.items():
            print(f"{system:8s} {str(reuse):>5s} "
                  f"{str(run['labels']['info']['scf_iterations']):>24s} "
                  f"{run['seconds']:8.1f}")
        entry = {
            "atoms": len(frame.atoms), "field": args.field,
            "kpts": list(args.kpts or make_metal.SETTINGS["kpts"]),
            "iterations": {"reuse": warm["info"]["scf_iterations"],
                           "scratch": cold["info"]["scf_iterations"]},
            "seconds": {"reuse": runs[True]["seconds"], "scratch": runs[False]["seconds"]},
            "differences": {
                "energy_eV": abs(float(warm["energy"]) - float(cold["energy"])),
                "dipole_eA": abs(float(warm["dipole"][2] - cold["dipole"][2])),
                "polarizability_rel": abs(warm["polarizability"][2, 2]
                                          / cold["polarizability"][2, 2] - 1),
                "forces_max_eV_A": float(np.abs(warm["forces"] - cold["forces"]).max()),
            },
            "command": "python benchmarks/gpaw_warm_start.py --systems " + f'"{system}"'
                       + f" --field {args.field:g}"
                       + (f" --kpts {args.kpts[0]} {args.kpts[1]}" if args.kpts else ""),
        }
        entry["time_ratio"] = entry["seconds"]["reuse"] / entry["seconds"]["scratch"]
        print(f"{system:8s} time with reuse / scratch {entry['time_ratio']:.2f}; label "
              "differences " + ", ".join(f"{k} {v:.1e}" for k, v in entry["differences"].items()))
        out[system] = entry
        write_json(out, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
