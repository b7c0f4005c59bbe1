"""Cost of the charge-equilibration (QEq) model's MD step against the latent-charge model's,
and the charge solver's scaling.

    python benchmarks/qeq_cost.py --repeat 3 --threads 2
    python benchmarks/qeq_cost.py --molecules 64 --scaling 1000 --repeat 1   # quick

Part 1, MD step (energy + forces, zero field), periodic water boxes of 64 and 512
molecules (192 and 1536 atoms, :func:`response_speed.water_box`), untrained models of the
default architecture (timing does not depend on the weights): ``family: latent`` against
``family: qeq`` with the dense solve (the whole Ewald matrix: N operator applications,
then LU) and with conjugate gradients on the PME operator (implicit derivatives), in one
run, best of ``--repeat`` after a warm-up; the CG iteration count.

Part 2, the solver alone (charges and their position derivatives, i.e. forces), for
water boxes of ``--scaling`` molecules (random electronegativities, PME at 1e-6):
seconds and CG iterations, to show the O(N log N) per iteration.

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


def main() -> None:
    import numpy as np
    import torch

    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.electrostatics import CoulombOperator, equilibrate
    from fieldforce.models import build_model, evaluate
    from latent_speed import best_time
    from response_speed import water_box

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--scaling", type=int, nargs="+", default=[512, 1728, 4096],
                        help="water molecules per box (part 2)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "qeq_cost.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {"latent": build_model({"family": "latent", "species": [1, 8]}).eval(),
              "qeq_dense": build_model({"family": "qeq", "species": [1, 8],
                                        "solver": "dense"}).eval(),
              "qeq_cg": build_model({"family": "qeq", "species": [1, 8],
                                     "solver": "cg"}).eval()}
    result = {"command": f"python benchmarks/qeq_cost.py --repeat {args.repeat} "
                         f"--threads {args.threads}",
              "repeat": args.repeat, "threads": args.threads,
              "model": "untrained, default architecture", "steps": [], "scaling": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'atoms':>6s}{'latent s':>10s}{'qeq dense s':>13s}{'ratio':>7s}{'qeq cg s':>10s}"
          f"{'ratio':>7s}{'operator calls':>16s}")
    for n_mol in args.molecules:
        batch = batch_from_atoms(water_box(n_mol))
        n = batch.positions.shape[0]
        row = {"molecules": n_mol, "atoms": n}
        for name, model in models.items():
            if name == "qeq_dense" and n > 800:
                row[name + "_s"] = None  # N Ewald applications: minutes per step
                continue
            row[name + "_s"] = best_time(lambda m=model, b=batch: evaluate(m, b)["forces"],
                                         args.repeat)
        with IterationCounter() as counter:
            evaluate(models["qeq_cg"], batch)
        row["qeq_cg_operator_calls"] = counter.count
        for name in ("qeq_dense", "qeq_cg"):
            value = row[name + "_s"]
            row[f"ratio_{name}_latent"] = None if value is None else value / row["latent_s"]
        result["steps"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")

        def show(key, row=row):
            value = row[key]
            return f"{'-':>7s}" if value is None else f"{value:7.2f}"

        dense = "-" if row["qeq_dense_s"] is None else f"{row['qeq_dense_s']:.3f}"
        print(f"{n:6d}{row['latent_s']:10.3f}{dense:>13s}{show('ratio_qeq_dense_latent')}"
              f"{row['qeq_cg_s']:10.3f}{show('ratio_qeq_cg_latent')}"
              f"{counter.count:16d}", flush=True)

    print(f"\n{'atoms':>7s}{'solve+forces s':>16s}{'operator calls':>16s}{'s per call':>12s}")
    rng = np.random.default_rng(0)  # electronegativities
    for n in args.scaling:
        box = batch_from_atoms(water_box(n))
        positions, cell = box.positions, box.cell[0]
        count = positions.shape[0]
        chi = torch.as_tensor(rng.normal(size=count))
        hardness = torch.full((count,), 5.0, dtype=torch.float64)
        widths = torch.full((count,), 0.7, dtype=torch.float64)
        groups = torch.zeros(count, dtype=torch.long)

        def solve(p=positions, c=cell, x=chi, h=hardness, w=widths, g=groups):
            pos = p.detach().requires_grad_(True)
            op = CoulombOperator(pos, c, True, method="pme", accuracy=1e-6, widths=w)
            eq = equilibrate(op, x, h, w, g, torch.zeros(1, dtype=torch.float64),
                             solver="cg", tol=1e-9)
            torch.autograd.grad(eq.energy, pos)

        with IterationCounter() as counter:
            seconds = best_time(solve, 1)
        calls = counter.count // 2  # warm-up + timed run
        row = {"atoms": count, "seconds": seconds, "operator_calls": calls,
               "seconds_per_call": seconds / max(calls, 1)}
        result["scaling"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{count:7d}{seconds:16.2f}{calls:16d}{row['seconds_per_call']:12.4f}",
              flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
