"""How much the apex grading of the atomistic mesh changes the fields (issue 16).

    python benchmarks/fem_grading.py --atoms 350 --reference-size 0.2   # results/fem_grading.json

One Cu tip of ``fem_tip_cost.py`` (about ``--atoms`` atoms), solved in E0 = 0.5 V/Å on a
reference mesh (uniform, ``--reference-size`` Å at the whole surface), on the default
uniform mesh (0.3 Å) and on meshes graded away from the apex (surface size 0.3 Å + G per Å
of distance from the tip's top facet, at most ``--size-far`` Å) for each G of
``--growths``. Per mesh:
elements, seconds, beta, and the per-atom field of the surface atoms against the
reference's: the RMS and largest difference of |E| relative to the reference's, over the
atoms of the tip's cap (within R of the apex), and in units of E0 over all surface atoms
(relative to the local field, the weak fields in the concave corners at the tip's foot
would dominate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))


def cap_of(atoms, surface: np.ndarray, radius: float) -> np.ndarray:
    """[N] bools: the surface atoms within ``radius`` of the highest atom (the tip's cap)."""
    apex = atoms.positions[np.argmax(atoms.positions[:, 2])]
    return surface & (np.linalg.norm(atoms.positions - apex, axis=1) <= radius)


def field_changes(fields: np.ndarray, reference: np.ndarray, cap: np.ndarray,
                  surface: np.ndarray, e0: float) -> dict[str, float]:
    """How far the per-atom |E| of ``fields`` [N, 3] is from ``reference`` [N] (V/Å): RMS
    and largest relative change over the ``cap`` atoms, and in units of E0 over all
    ``surface`` atoms."""
    magnitude = np.linalg.norm(fields, axis=1)
    relative = (magnitude - reference) / reference
    of_e0 = (magnitude - reference) / abs(e0)
    return {"cap_rms": float(np.sqrt((relative[cap] ** 2).mean())),
            "cap_max": float(np.abs(relative[cap]).max()),
            "all_rms_of_e0": float(np.sqrt((of_e0[surface] ** 2).mean())),
            "all_max_of_e0": float(np.abs(of_e0[surface]).max())}


def main() -> None:
    import torch

    from fem_tip_cost import build_tip, radius_for
    from fieldforce.data.atomic import write_json
    from fieldforce.fields.fem.atomistic import solve_atoms

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atoms", type=int, default=350)
    parser.add_argument("--e0", type=float, default=0.5)
    parser.add_argument("--reference-size", type=float, default=0.2)
    parser.add_argument("--growths", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1])
    parser.add_argument("--size-far", type=float, default=1.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "fem_grading.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    radius = radius_for(args.atoms)
    atoms = build_tip(radius)
    meshes = [("reference", {"size_surface": args.reference_size, "apex_growth": 0.0}),
              ("uniform 0.3", {"apex_growth": 0.0})]
    meshes += [(f"graded {g:g}", {"apex_growth": g, "size_far": args.size_far})
               for g in args.growths]
    rows, reference = [], None
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    print(f"{len(atoms)} atoms, R = {radius:.1f} Å")
    print(f"{'mesh':>14s} {'elements':>9s} {'s':>6s} {'beta':>6s} {'cap rms':>8s} "
          f"{'cap max':>8s} {'all rms/E0':>10s} {'max/E0':>8s}")
    for name, options in meshes:
        start = time.perf_counter()
        result = solve_atoms(atoms, args.e0, **options)
        seconds = time.perf_counter() - start
        if reference is None:
            reference = np.linalg.norm(result.fields, axis=1)
            surface = result.surface
            cap = cap_of(atoms, surface, radius)
        row = {"mesh": name, **options, "elements": result.solution.vacuum.n_elements,
               "seconds": seconds, "beta": result.beta,
               **field_changes(result.fields, reference, cap, surface, args.e0),
               "cap_atoms": int(cap.sum()), "surface_atoms": int(surface.sum())}
        rows.append(row)
        print(f"{name:>14s} {row['elements']:9d} {seconds:6.1f} {row['beta']:6.3f} "
              f"{100 * row['cap_rms']:7.2f}% {100 * row['cap_max']:7.2f}% "
              f"{100 * row['all_rms_of_e0']:7.2f}% {100 * row['all_max_of_e0']:7.2f}%",
              flush=True)
        del result
    results[str(len(atoms))] = {"command": "python benchmarks/fem_grading.py "
                                + " ".join(sys.argv[1:]), "atoms": len(atoms),
                                "radius": radius, "e0": args.e0, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
