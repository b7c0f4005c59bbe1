"""Cost of one MD step of the latent-charge model against its short-range-only twin.

    python benchmarks/latent_speed.py --repeat 5 --threads 2
    python benchmarks/latent_speed.py --molecules 8 --repeat 1      # a quick check

Systems: periodic water boxes of 64 and 512 molecules (192 and 1536 atoms) at
1 g/cm³ (:func:`response_speed.water_box`: shipped monomers on a cubic grid,
random orientations). Models: untrained, default architecture (timing does not
depend on the weights), ``family: latent`` and the same with ``long_range: false``.
Steps timed (best of ``--repeat`` after one warm-up, the four model steps interleaved):

* energy + forces at zero field;
* energy + forces in a uniform field of 0.1 V/Å: for the latent model in a periodic
  cell this adds the Born-charge field forces Z*^T E (LES phase-form Born charges,
  one backward pass per phase sum); the short-range model has no field coupling, so
  its step is the zero-field one;
* energy + forces + all Born charges (three phase sums, as when writing Z* to a
  trajectory or for a field along no lattice axis);
* the Coulomb sum alone (potential and its position gradient for fixed charges, the
  method ``auto`` picks), to show its share.

Reported: s/step, steps/s and the ratio latent / short-range (published LES
implementations cost about 2x a short-range model); the Coulomb method ``auto``
chose and its parameters. Writes benchmarks/results/latent_speed.json after every box.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def best_times(fns, repeat: int) -> list[float]:
    """Best of ``repeat`` wall times of each function, the functions taken in turn within
    each repetition (interleaved), so that load from other jobs that comes and goes falls
    on all of them alike and their ratios stay meaningful on a shared machine."""
    for fn in fns:
        fn()  # warm-up (TorchScript of the torch-pme calculator, caches)
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, t in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [min(t) for t in times]


def coulomb_choice(model, batch) -> dict:
    """The method and splitting parameters the latent model's ``auto`` uses for ``batch``."""
    from fieldforce.electrostatics.coulomb import _pbc_tensor, _resolve_method
    from fieldforce.electrostatics.parameters import splitting_parameters

    cfg = model.config
    cell = batch.cell[0]
    method = _resolve_method(cfg["method"], _pbc_tensor(batch.pbc[0].numpy()), cell,
                             batch.positions.shape[0], cfg["accuracy"])
    params = splitting_parameters(method, cfg["accuracy"], batch.positions.shape[0],
                                  cell.numpy())
    return {"requested": cfg["method"], "accuracy": cfg["accuracy"],
            "charge_width": cfg["charge_width"], **asdict(params)}


def main() -> None:
    import torch

    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.electrostatics import coulomb_potential
    from fieldforce.models import build_model, evaluate
    from response_speed import water_box

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--field", type=float, default=0.1, help="V/Å, along z")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "latent_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    latent = build_model({"family": "latent", "species": [1, 8]}).eval()
    short = build_model({"family": "latent", "long_range": False, "species": [1, 8]}).eval()
    field = torch.tensor([0.0, 0.0, args.field], dtype=torch.float64)
    result = {"command": f"python benchmarks/latent_speed.py --repeat {args.repeat} "
                         f"--threads {args.threads}",
              "repeat": args.repeat, "threads": args.threads, "field_V_per_A": args.field,
              "model": "untrained, default architecture", "rows": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'atoms':>6s}{'short s':>10s}{'latent s':>10s}{'ratio':>7s}{'latent+E s':>12s}"
          f"{'ratio':>7s}{'+all Z* s':>11s}{'Coulomb s':>11s}  method")
    for n_mol in args.molecules:
        batch = batch_from_atoms(water_box(n_mol))
        n = batch.positions.shape[0]
        t_short, t_latent, t_field, t_born = best_times(
            [lambda b=batch: evaluate(short, b)["forces"],
             lambda b=batch: evaluate(latent, b)["forces"],
             lambda b=batch: evaluate(latent, b, field=field)["forces"],
             lambda b=batch: evaluate(latent, b, born_charges=True)["forces"]], args.repeat)
        choice = coulomb_choice(latent, batch)
        charges = 0.1 * torch.randn(n, dtype=torch.float64)
        charges -= charges.mean()
        widths = torch.full((n,), latent.config["charge_width"], dtype=torch.float64)

        def coulomb(b=batch, q=charges, w=widths):
            pos = b.positions.detach().requires_grad_(True)
            phi = coulomb_potential(pos, q, b.cell[0], b.pbc[0].numpy(),
                                    method=latent.config["method"],
                                    accuracy=latent.config["accuracy"], widths=w)
            torch.autograd.grad(0.5 * (q * phi).sum(), pos)

        (t_coulomb,) = best_times([coulomb], args.repeat)
        row = {"molecules": n_mol, "atoms": n, "cell_A": float(batch.cell[0, 0, 0]),
               "short_range_s": t_short, "latent_s": t_latent, "latent_field_s": t_field,
               "latent_born_charges_s": t_born, "coulomb_s": t_coulomb,
               "short_range_steps_per_s": 1 / t_short, "latent_steps_per_s": 1 / t_latent,
               "latent_field_steps_per_s": 1 / t_field,
               "ratio_latent_short": t_latent / t_short,
               "ratio_latent_field_short": t_field / t_short,
               "ratio_latent_born_short": t_born / t_short, "coulomb": choice}
        result["rows"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{n:6d}{t_short:10.3f}{t_latent:10.3f}{row['ratio_latent_short']:7.2f}"
              f"{t_field:12.3f}{row['ratio_latent_field_short']:7.2f}{t_born:11.3f}"
              f"{t_coulomb:11.3f}  "
              f"{choice['method']} (cutoff {choice['cutoff']:.2f} Å, smearing "
              f"{choice['smearing']:.3f} Å, wavelength {choice['wavelength']:.3f} Å, mesh "
              f"{choice['mesh_spacing']})", flush=True)
    print("s/step, best of", args.repeat, "after a warm-up; 'latent+E': with the Born-charge "
          "field forces in", args.field, "V/Å")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
