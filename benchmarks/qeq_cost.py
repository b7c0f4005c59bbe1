"""Cost of the charge-equilibration (QEq) model's MD step against the latent-charge model's,
and the charge solver's scaling.

    python benchmarks/qeq_cost.py --threads 2
    python benchmarks/qeq_cost.py --molecules 64 --scaling 512 --steps 2   # quick

Part 1, MD step: NVE velocity Verlet (0.5 fs, velocities drawn at 300 K, zero field) of
periodic water boxes of ``--molecules`` molecules (192 and 1536 atoms by default,
:func:`response_speed.water_box`) through the ASE calculator, untrained models of the
default architecture (timing does not depend on the weights), ``--warmup`` steps and then
the mean over ``--steps`` steps, every model in one run: ``family: latent`` against
``family: qeq`` with the dense solve (the whole Ewald matrix: N operator applications,
then LU), and with conjugate gradients on the PME operator (implicit derivatives) in
three set-ups: Jacobi-preconditioned from zero charges (the first CG version), the
short-range (multigrid) preconditioner from zero charges, and the default (short-range,
started from the previous steps' charges). A trajectory, not one geometry evaluated again,
so that the warm start is not handed the exact solution.

Part 2, the solver alone (charges and their position derivatives, i.e. forces), for
water boxes of ``--scaling`` molecules (random electronegativities, PME at 1e-6, CG to a
relative residual of 1e-9 from zero charges), with each preconditioner: seconds, operator
applications, seconds per application, and the preconditioner's set-up (sparse matrix +
multigrid hierarchy, once per geometry). Jacobi is skipped above ``--jacobi-max-atoms``.

Writes benchmarks/results/qeq_cost.json after every row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


class IterationCounter:
    """Counts Coulomb-operator applications (CG iterations + residuals) while active."""

    def __init__(self):
        from fieldforce.electrostatics.operator import CoulombOperator

        self.cls, self.count = CoulombOperator, 0
        self.original = CoulombOperator.potential

    def __enter__(self):
        counter = self

        def counted(op, charges):
            counter.count += 1
            return counter.original(op, charges)

        self.cls.potential = counted
        self.cls.__call__ = counted
        return self

    def __exit__(self, *exc):
        self.cls.potential = self.original
        self.cls.__call__ = self.original


def md_step(model, atoms, steps: int, warmup: int) -> tuple[float, float]:
    """Mean wall seconds and Coulomb-operator applications per NVE step of ``model``."""
    import time

    import numpy as np
    from ase import units
    from ase.md import velocitydistribution
    from ase.md.verlet import VelocityVerlet

    from fieldforce.simulation import FieldForceCalculator

    atoms = atoms.copy()
    atoms.calc = FieldForceCalculator(model)
    thermalize = getattr(velocitydistribution, "thermalize_momenta",  # ASE >= 3.29
                         velocitydistribution.MaxwellBoltzmannDistribution)
    thermalize(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dynamics.run(warmup)
    with IterationCounter() as counter:
        start = time.perf_counter()
        dynamics.run(steps)
        seconds = time.perf_counter() - start
    return seconds / steps, counter.count / steps


VARIANTS = {  # name -> model config beyond the family and species
    "latent": {"family": "latent"},
    "qeq_dense": {"family": "qeq", "solver": "dense"},
    "qeq_cg_jacobi_cold": {"family": "qeq", "solver": "cg",
                           "solver_preconditioner": "jacobi", "solver_warm_start": False},
    "qeq_cg_short_range_cold": {"family": "qeq", "solver": "cg",
                                "solver_preconditioner": "short-range",
                                "solver_warm_start": False},
    "qeq_cg": {"family": "qeq", "solver": "cg"},  # the defaults: short-range, warm
}


def main() -> None:
    import time

    import numpy as np
    import torch

    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.electrostatics import CoulombOperator, equilibrate
    from fieldforce.electrostatics.preconditioner import ShortRangePreconditioner
    from fieldforce.models import build_model
    from response_speed import water_box

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--steps", type=int, default=4, help="timed MD steps (part 1)")
    parser.add_argument("--warmup", type=int, default=2, help="MD steps before timing")
    parser.add_argument("--scaling", type=int, nargs="+", default=[512, 1728, 4096],
                        help="water molecules per box (part 2)")
    parser.add_argument("--jacobi-max-atoms", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "qeq_cost.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {name: build_model({**config, "species": [1, 8]}).eval()
              for name, config in VARIANTS.items()}
    result = {"command": "python benchmarks/qeq_cost.py " + " ".join(sys.argv[1:]),
              "threads": args.threads, "steps": args.steps, "warmup": args.warmup,
              "timestep_fs": 0.5, "model": "untrained, default architecture",
              "variants": VARIANTS, "md": [], "scaling": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print("MD step, seconds (Coulomb-operator applications per step); ratio to latent")
    for n_mol in args.molecules:
        atoms = water_box(n_mol)
        row = {"molecules": n_mol, "atoms": len(atoms)}
        for name, model in models.items():
            if name == "qeq_dense" and len(atoms) > 800:
                row[name] = None  # N Ewald applications per step: minutes
                continue
            seconds, calls = md_step(model, atoms, args.steps, args.warmup)
            row[name] = {"seconds": seconds, "operator_calls": calls}
        for name in VARIANTS:
            if row[name] is not None:
                row[name]["ratio_to_latent"] = row[name]["seconds"] / row["latent"]["seconds"]
        result["md"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        cells = [f"{name} {v['seconds']:.3f} s ({v['operator_calls']:.0f}) "
                 f"{v['ratio_to_latent']:.1f}x" for name, v in
                 ((name, row[name]) for name in VARIANTS) if v is not None]
        print(f"{len(atoms)} atoms: " + "; ".join(cells), flush=True)

    print(f"\n{'atoms':>7s}{'preconditioner':>16s}{'set-up s':>10s}{'solve+forces s':>16s}"
          f"{'operator calls':>16s}{'s per call':>12s}")
    rng = np.random.default_rng(0)  # electronegativities
    for n_mol in args.scaling:
        box = batch_from_atoms(water_box(n_mol))
        positions, cell = box.positions, box.cell[0]
        count = positions.shape[0]
        chi = torch.as_tensor(rng.normal(size=count))
        hardness = torch.full((count,), 5.0, dtype=torch.float64)
        widths = torch.full((count,), 0.7, dtype=torch.float64)
        groups = torch.zeros(count, dtype=torch.long)
        start = time.perf_counter()
        ShortRangePreconditioner(positions, cell, np.ones(3, bool), widths, hardness)
        setup = time.perf_counter() - start
        for preconditioner in ("short-range", "jacobi"):
            if preconditioner == "jacobi" and count > args.jacobi_max_atoms:
                continue

            def solve(p=positions, c=cell, x=chi, h=hardness, w=widths, g=groups,
                      k=preconditioner):
                pos = p.detach().requires_grad_(True)
                op = CoulombOperator(pos, c, True, method="pme", accuracy=1e-6, widths=w)
                eq = equilibrate(op, x, h, w, g, torch.zeros(1, dtype=torch.float64),
                                 solver="cg", tol=1e-9, preconditioner=k)
                torch.autograd.grad(eq.energy, pos)

            solve()  # warm-up: torch-pme's TorchScript, caches
            with IterationCounter() as counter:
                start = time.perf_counter()
                solve()
                seconds = time.perf_counter() - start
            row = {"atoms": count, "preconditioner": preconditioner, "seconds": seconds,
                   "operator_calls": counter.count,
                   "seconds_per_call": seconds / max(counter.count, 1),
                   "setup_seconds": setup if preconditioner == "short-range" else 0.0}
            result["scaling"].append(row)
            args.out.write_text(json.dumps(result, indent=1) + "\n")
            print(f"{count:7d}{preconditioner:>16s}{row['setup_seconds']:10.2f}"
                  f"{seconds:16.2f}{counter.count:16d}{row['seconds_per_call']:12.4f}",
                  flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
