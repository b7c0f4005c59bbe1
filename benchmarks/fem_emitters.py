"""Apex field enhancement of the canonical emitters: finite elements against the closed
forms and the published fit, at several aspect ratios, with the mesh-convergence rows.

    python benchmarks/fem_emitters.py [--refine 2] [--threads 1]

Shapes: the hemisphere on a plane (beta = 3 exactly), hemi-ellipsoids of height/radius 2,
5, 10, 30, 100 (closed form, fieldforce.fields.fem.emitters), hemispheres on posts of
h/r 5, 10, 30, 100 (the fit of Forbes, Edgcombe and Valdrè 2003, stated within 3 % for
30 <= h/r <= 2000). Radius 1 Å (beta depends on shape only). Writes
benchmarks/results/fem_emitters.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = [("hemisphere", 1.0)] + [("hemi-ellipsoid", a) for a in (2, 5, 10, 30, 100)] + [
    ("hemisphere-on-post", a) for a in (5, 10, 30, 100)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refine", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "fem_emitters.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from fieldforce.fields.fem import Emitter
    from fieldforce.fields.fem.validate import validate_emitter

    results = []
    print(f"{'shape':20s} {'h/r':>5s} {'level':>5s} {'elements':>9s} {'beta':>10s} "
          f"{'reference':>10s} {'error %':>8s} {'Q/eps0E0A':>9s} {'s':>6s}")
    for shape, aspect in CASES:
        emitter = Emitter.make(shape, 1.0, aspect)
        reference, _ = emitter.reference()

        def show(row, shape=shape, aspect=aspect, reference=reference):
            print(f"{shape:20s} {aspect:5g} {row['level']:5d} {row['n_elements']:9d} "
                  f"{row['beta']:10.4f} {reference:10.4f} "
                  f"{100 * row['relative_error']:+8.3f} {row['charge_ratio']:9.5f} "
                  f"{row['seconds']:6.1f}", flush=True)

        results.append(validate_emitter(emitter, refine=args.refine, progress=show))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cases": results, "refine": args.refine,
                                    "threads": args.threads}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
