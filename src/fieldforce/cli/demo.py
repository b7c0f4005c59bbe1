"""``fieldforce demo``: the main job on the data the package ships.

Trains the response model on the shipped water data, scores it on held-out frames, runs
molecular dynamics of a water trimer in a static 0.1 V/Å field and computes its IR
spectrum, all into ``runs/demo/`` with a ``summary.md`` (the pipeline:
:mod:`fieldforce.pipelines.demo`). ``--dft-check`` instead labels one molecule with DFT
and checks the physics (:mod:`fieldforce.pipelines.dft_check`). ``--quick`` shrinks every
step (a smoke test of the pipeline, not a result).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the demonstration on the shipped data",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, default=Path("runs/demo"), help="output directory")
    p.add_argument("--epochs", type=int, default=None,
                   help="upper limit on training epochs (default: the training defaults)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps of the training (default: the training defaults, "
                        "10,000)")
    p.add_argument("--md-ps", type=float, default=5.0, help="MD length in ps")
    p.add_argument("--quick", action="store_true", help="tiny run: pipeline check only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dft-check", action="store_true",
                   help="label one water molecule with DFT instead and check the physics")
    p.add_argument("--efield", type=float, nargs=3, default=(0.0, 0.0, 0.05),
                   metavar=("EX", "EY", "EZ"), help="field of the --dft-check label, V/Å")
    p.add_argument("--basis", default=None, help="--dft-check: override the basis")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.dft_check:
        from fieldforce.pipelines.dft_check import dft_check

        return dft_check(efield=args.efield, basis=args.basis)
    from fieldforce.pipelines.demo import run_demo

    run_demo(args.output, epochs=args.epochs, steps=args.steps, md_ps=args.md_ps,
             quick=args.quick,
             progress=not args.no_progress)
    return 0
