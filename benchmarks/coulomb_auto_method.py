"""Which periodic Coulomb method is cheapest below 1000 atoms: the data behind ``auto``.

    python benchmarks/coulomb_auto_method.py --threads 1
    python benchmarks/coulomb_auto_method.py --sizes 192 768 --accuracies 1e-5 --repeat 7

``coulomb_potential(method="auto")`` picks a method for a periodic cell from the atom
count and the requested accuracy (``fieldforce.electrostatics.coulomb``). This measures
the choice where the models use it: periodic water (``examples/water_box.xyz``, 24
atoms, repeated), charges as a latent-charge model gives them (O -0.8 e, H +0.4 e, plus
a 0.05 e spread, neutral), Gaussian charges of width ``--width`` Å (the latent model's
default 1/sqrt(2); 0: point charges). Per size and accuracy, one energy + forces
evaluation (the energy's gradient) of Ewald, PME and P3M, timed in turn (A B C A B C),
``--repeat`` times each after a warm-up, medians compared; the force error is the
relative RMS against Ewald at accuracy 1e-10. Prints a table and writes
``benchmarks/results/coulomb_auto_method.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("ewald", "pme", "p3m")
#: repetitions of the 24-atom box (6.2 Å) per size
REPEATS = {24: (1, 1, 1), 48: (2, 1, 1), 96: (2, 2, 1), 192: (2, 2, 2), 384: (4, 2, 2),
           576: (4, 3, 2), 768: (4, 4, 2), 1536: (4, 4, 4)}


def water(n_atoms: int, seed: int = 0):
    """Periodic water of ``n_atoms`` and latent-like neutral charges (e)."""
    import ase.io

    atoms = ase.io.read(ROOT / "examples" / "water_box.xyz").repeat(REPEATS[n_atoms])
    rng = np.random.default_rng(seed)
    charges = np.where(atoms.numbers == 8, -0.8, 0.4) + 0.05 * rng.standard_normal(len(atoms))
    return atoms, charges - charges.mean()


def coulomb_forces(atoms, charges, method: str, accuracy: float, width: float):
    """Coulomb forces [N, 3] eV/Å as a model gets them: the energy's gradient."""
    import torch

    from fieldforce.electrostatics import coulomb_potential

    positions = torch.tensor(atoms.positions, requires_grad=True)
    q = torch.tensor(charges)
    widths = torch.full_like(q, width) if width > 0 else None
    energy = 0.5 * (q * coulomb_potential(positions, q, torch.tensor(atoms.cell.array), True,
                                          method=method, accuracy=accuracy,
                                          widths=widths)).sum()
    forces = -torch.autograd.grad(energy, positions)[0]
    return forces.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 192, 384, 768, 1536],
                        choices=sorted(REPEATS))
    parser.add_argument("--accuracies", type=float, nargs="+", default=[1e-4, 1e-5, 1e-6])
    parser.add_argument("--width", type=float, default=2 ** -0.5,
                        help="Gaussian charge width, Å (0: point charges)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "coulomb_auto_method.json")
    args = parser.parse_args()
    import torch

    from fieldforce.data.atomic import write_json
    from fieldforce.electrostatics.coulomb import _resolve_method

    torch.set_num_threads(args.threads)
    rows = []
    print("| atoms | accuracy | Ewald ms | PME ms | P3M ms | fastest | auto picks | "
          "force errors (Ewald, PME, P3M) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        atoms, charges = water(n)
        reference = coulomb_forces(atoms, charges, "ewald", 1e-10, args.width)
        scale = np.sqrt((reference ** 2).sum())
        for accuracy in args.accuracies:
            times = {m: [] for m in METHODS}
            errors = {}
            for method in METHODS:  # warm-up: calculators, parameters, error
                forces = coulomb_forces(atoms, charges, method, accuracy, args.width)
                errors[method] = float(np.sqrt(((forces - reference) ** 2).sum()) / scale)
            for _ in range(args.repeat):
                for method in METHODS:
                    start = time.perf_counter()
                    coulomb_forces(atoms, charges, method, accuracy, args.width)
                    times[method].append(time.perf_counter() - start)
            median = {m: statistics.median(t) for m, t in times.items()}
            fastest = min(median, key=median.get)
            auto = _resolve_method("auto", torch.ones(3, dtype=torch.bool),
                                   torch.tensor(atoms.cell.array), len(atoms), accuracy)
            rows.append({"atoms": n, "accuracy": accuracy, "width": args.width,
                         "median_s": median, "force_error": errors, "fastest": fastest,
                         "auto": auto, "times_s": times})
            print(f"| {n} | {accuracy:.0e} | "
                  + " | ".join(f"{1000 * median[m]:.1f}" for m in METHODS)
                  + f" | {fastest} | {auto} | "
                  + ", ".join(f"{errors[m]:.1e}" for m in METHODS) + " |", flush=True)
    write_json({"threads": args.threads, "repeat": args.repeat, "width": args.width,
                "rows": rows}, args.out)


if __name__ == "__main__":
    main()
