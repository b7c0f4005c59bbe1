"""Cost of the finite-element field around atomistic Cu tips: one solve (mesh + P2 solve)
and one re-solve after the surface has moved a little (the mesh reused), by tip size.

    python benchmarks/fem_tip_cost.py --sizes 1000 3000 --threads 1   # results/fem_tip_cost.json

Each structure is a Cu(100) slab (4 layers, bottom fixed) with a tip on it: the fcc sites
inside a cylinder capped by a hemisphere (radius R, height H = 3R above the slab), the
slab's lateral size 3x the tip's diameter so the mirror walls are far; R is chosen to give
about the requested number of atoms. For each: the solve from scratch, then every surface
atom displaced by 0.05 Å at random and solved again on the same mesh (what
:class:`~fieldforce.fields.fem.coupled.FEMField` does between re-meshes), with the
element count, beta and the seconds of each part. Sizes whose mesh would exceed
``--max-elements`` (estimated from the previous size) are skipped and said so.

The mesh is graded away from the tip's top facet (``--apex-growth``, default the package's
0.02 per Å, up to ``--size-far``; :func:`~fieldforce.fields.fem.atomistic.mesh_box`;
``--apex-growth 0``: uniform, results then in ``fem_tip_cost_uniform.json``);
``--compare-below N`` also solves the sizes under N atoms on the uniform mesh, for the
apex field's change. The peak resident memory of the process
so far is recorded with every row.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
A_CU = 3.61


def build_tip(radius: float, layers: int = 4, gap: float = 0.0):
    """A Cu(100) slab with a hemisphere-capped cylinder of fcc sites on it (height 3R)."""
    from ase import Atoms
    from ase.build import fcc100
    from ase.constraints import FixAtoms

    height = 3.0 * radius
    spacing = A_CU / np.sqrt(2)  # surface nearest-neighbour distance
    n = max(4, int(np.ceil(6 * radius / spacing)))
    slab = fcc100("Cu", size=(n, n, layers), a=A_CU, vacuum=10.0, orthogonal=True)
    top = slab.positions[:, 2].max()
    centre = np.array([slab.cell[0, 0] / 2, slab.cell[1, 1] / 2])
    # fcc sites continuing the slab upwards: the top layer's pattern alternates by layer
    d = A_CU / 2  # (100) interlayer spacing
    tops = slab.positions[slab.positions[:, 2] > top - 0.1][:, :2]
    below = slab.positions[np.abs(slab.positions[:, 2] - (top - d)) < 0.1][:, :2]
    sites = []
    for k in range(1, int(height / d) + 1):
        lateral = below if k % 2 else tops
        z = top + k * d
        h = k * d
        r2 = ((lateral - centre) ** 2).sum(axis=1)
        cap = height - radius  # the cylinder's top, then the hemisphere
        limit = radius**2 if h <= cap else radius**2 - (h - cap) ** 2
        for xy in lateral[r2 <= limit]:
            sites.append([*xy, z])
    tip = Atoms("Cu" * len(sites), positions=sites)
    structure = slab + tip
    structure.cell[2, 2] = structure.positions[:, 2].max() + 10.0 + gap
    structure.set_constraint(FixAtoms(mask=structure.positions[:, 2] < 0.1
                                      + structure.positions[:, 2].min()))
    return structure


def radius_for(atoms: int) -> float:
    """The tip radius whose structure has about ``atoms`` atoms (bisection)."""
    low, high = 2.0, 60.0
    for _ in range(20):
        mid = 0.5 * (low + high)
        if len(build_tip(mid)) < atoms:
            low = mid
        else:
            high = mid
    return high


def main() -> None:
    import torch

    from fieldforce.fields.fem.atomistic import APEX_GROWTH, solve_atoms

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--e0", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-elements", type=float, default=1.5e6,
                        help="skip sizes whose mesh would exceed this: ~10 kB per element "
                             "(2.2 M elements did not fit in 24 GB)")
    parser.add_argument("--apex-growth", type=float, default=APEX_GROWTH)
    parser.add_argument("--size-far", type=float, default=None)
    parser.add_argument("--compare-below", type=int, default=0,
                        help="also solve the sizes below this many atoms uniformly")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    graded = {"apex_growth": args.apex_growth, "size_far": args.size_far}
    name = "fem_tip_cost.json" if args.apex_growth > 0 else "fem_tip_cost_uniform.json"
    args.out = args.out or ROOT / "benchmarks" / "results" / name
    torch.set_num_threads(args.threads)
    import resource
    import sys

    result = {"command": "python benchmarks/fem_tip_cost.py " + " ".join(sys.argv[1:]),
              "e0": args.e0, "grading": graded, "rows": []}
    print(f"{'atoms':>7s} {'R (Å)':>6s} {'elements':>9s} {'beta':>6s} {'mesh s':>8s} "
          f"{'solve s':>8s} {'total s':>8s} | re-solve: {'s':>6s} {'beta':>6s}")
    per_atom = None
    for target in args.sizes:
        radius = radius_for(target)
        atoms = build_tip(radius)
        if per_atom is not None and per_atom * len(atoms) > args.max_elements:
            print(f"{len(atoms):7d}: skipped, ~{per_atom * len(atoms):.2g} elements expected "
                  f"(> --max-elements)")
            result["rows"].append({"atoms": len(atoms), "skipped": True})
            continue
        start = time.perf_counter()
        first = solve_atoms(atoms, args.e0, **graded)
        total = time.perf_counter() - start
        elements = int(first.solution.vacuum.mesh.t.shape[1])
        per_atom = elements / len(atoms)
        moved = atoms.copy()
        rng = np.random.default_rng(0)
        surface = np.flatnonzero(first.surface)
        moved.positions[surface] += rng.normal(scale=0.05 / np.sqrt(3), size=(len(surface), 3))
        start = time.perf_counter()
        again = solve_atoms(moved, args.e0, mesh=first.solution.vacuum)
        resolve = time.perf_counter() - start
        uniform = None
        if args.apex_growth > 0 and len(atoms) < args.compare_below:
            del first.solution.basis  # free the graded solve's memory first
            uniform = solve_atoms(atoms, args.e0, apex_growth=0.0)
        row = {"atoms": len(atoms), "radius": radius, "height": 3 * radius,
               "elements": elements, "beta": first.beta,
               "mesh_s": first.seconds["mesh"], "solve_s": first.seconds["solve"],
               "total_s": total, "resolve_s": resolve, "resolve_beta": again.beta,
               "cg_iterations": first.solution.iterations,
               "assemble_s": first.solution.seconds["assemble"],
               "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}
        if uniform is not None:
            row.update(uniform_elements=int(uniform.solution.vacuum.mesh.t.shape[1]),
                       uniform_beta=uniform.beta, uniform_s=uniform.seconds["total"])
        result["rows"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{len(atoms):7d} {radius:6.1f} {elements:9d} {first.beta:6.2f} "
              f"{row['mesh_s']:8.1f} {row['solve_s']:8.1f} {total:8.1f} | "
              f"{resolve:8.1f} {again.beta:6.2f}  peak {row['peak_rss_GB']:.1f} GB"
              + ("" if uniform is None else f"; uniform: {row['uniform_elements']} elements, "
                 f"beta {uniform.beta:.3f}, {row['uniform_s']:.0f} s"), flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
