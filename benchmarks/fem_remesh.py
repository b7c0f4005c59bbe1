"""When must the coupled field re-mesh? The fields of a reused mesh against a fresh one,
for surface atoms moved as thermal motion moves them (issue 16).

    python benchmarks/fem_remesh.py --atoms 350       # results/fem_remesh.json

The tip of ``fem_tip_cost.py`` is meshed once (the default graded mesh); then every
surface atom is displaced by Gaussian noise of ``sigma`` Å per component, and the field
is solved three ways at the displaced positions: on the original mesh (what
:class:`~fieldforce.fields.fem.coupled.FEMField` does until a surface atom has moved
``remesh`` Å), on a fresh mesh, and on a fine reference mesh (uniform ``--reference-size``).
Reported per sigma: the largest atom displacement, and the RMS and largest change of |E|
at the cap's atoms (relative) and at all surface atoms (in units of E0) for the reused
and the fresh mesh against the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    from fem_grading import cap_of, field_changes
    from fem_tip_cost import build_tip, radius_for
    from fieldforce.data.atomic import write_json
    from fieldforce.fields.fem.atomistic import solve_atoms

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atoms", type=int, default=350)
    parser.add_argument("--e0", type=float, default=0.5)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--reference-size", type=float, default=0.2)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "fem_remesh.json")
    args = parser.parse_args()
    radius = radius_for(args.atoms)
    atoms = build_tip(radius)
    first = solve_atoms(atoms, args.e0)
    surface = first.surface
    cap = cap_of(atoms, surface, radius)
    rows = []
    print(f"{len(atoms)} atoms; mesh of the undisplaced tip: "
          f"{first.solution.vacuum.n_elements} elements")
    print(f"{'sigma':>6s} {'max move':>9s} | {'reused: cap rms':>15s} {'cap max':>8s} "
          f"{'all rms/E0':>10s} | {'fresh: cap rms':>14s} {'cap max':>8s} {'all rms/E0':>10s}")
    for sigma in args.sigmas:
        moved = atoms.copy()
        rng = np.random.default_rng(1)
        moved.positions[surface] += rng.normal(scale=sigma, size=(int(surface.sum()), 3))
        biggest = float(np.linalg.norm(moved.positions - atoms.positions, axis=1).max())
        reference = np.linalg.norm(solve_atoms(moved, args.e0, size_surface=args.reference_size,
                                               apex_growth=0.0).fields, axis=1)
        row = {"sigma": sigma, "max_displacement": biggest}
        for name, result in (("reused", solve_atoms(moved, args.e0,
                                                    mesh=first.solution.vacuum)),
                             ("fresh", solve_atoms(moved, args.e0))):
            row[name] = {**field_changes(result.fields, reference, cap, surface, args.e0),
                         "beta": result.beta}
        rows.append(row)
        r, f = row["reused"], row["fresh"]
        print(f"{sigma:6.2f} {biggest:9.2f} | {100 * r['cap_rms']:14.2f}% "
              f"{100 * r['cap_max']:7.2f}% {100 * r['all_rms_of_e0']:9.2f}% | "
              f"{100 * f['cap_rms']:13.2f}% {100 * f['cap_max']:7.2f}% "
              f"{100 * f['all_rms_of_e0']:9.2f}%", flush=True)
    write_json({"command": "python benchmarks/fem_remesh.py " + " ".join(sys.argv[1:]),
                "atoms": len(atoms), "rows": rows}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
