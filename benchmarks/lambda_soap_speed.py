"""lambda-SOAP cost: fieldforce's dense products against featomic's EquivariantPowerSpectrum.

    python benchmarks/lambda_soap_speed.py --threads 1

Both start from the same featomic spherical expansion and give the same numbers
(tests/test_descriptors.py); featomic rebuilds its product metadata (Labels) in Python on
every call, fieldforce forms the products as dense einsums with the CG coefficients and
the column order taken once from featomic. Timed per structure size (a water trimer;
periodic water of 192 and 768 atoms): lambda = 1, 2 features + the gradient of a random
linear read-out w.r.t. positions (what a force evaluation needs), and one energy + forces
+ dipole step of the default response model in a 0.1 V/Å field. Median of ``--repeat``
in one process, the two paths interleaved. Saves benchmarks/results/lambda_soap_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def structures():
    import ase.io

    from fieldforce.datasets import load_water

    trimer = next(f.atoms for f in load_water() if f.atoms.info.get("config_type") == "trimer")
    box = ase.io.read(ROOT / "examples" / "water_box.xyz")
    return {"trimer (9)": trimer, "water 192": box.repeat((2, 2, 2)),
            "water 768": box.repeat((4, 4, 2))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "lambda_soap_speed.json")
    args = parser.parse_args()
    import torch

    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.datasets import load_water
    from fieldforce.descriptors import DescriptorSettings, SOAPFeatures
    from fieldforce.models import build_model, evaluate

    torch.set_num_threads(args.threads)
    soap = SOAPFeatures(DescriptorSettings())
    model = build_model({"family": "response", "species": [1, 8]})
    model.fit_statistics(load_water()[:50])
    field = torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)

    def ours(b):
        return soap(b.positions, b.numbers, b.cell, b.pbc, b.structure_index)

    def featomic(b):
        systems, _ = soap._systems(b.positions, b.numbers, b.cell, b.pbc, b.structure_index)
        soap._power_spectrum.compute(systems)
        spectrum = soap._lambda_soap.compute(systems, selected_keys=soap._equivariant_keys,
                                             neighbors_to_properties=True)
        return [block.values for block in spectrum.blocks()]

    def with_gradient(fn, atoms):
        b = batch_from_atoms(atoms)
        positions = b.positions.requires_grad_(True)
        out = fn(b)
        values = list(out.values()) if isinstance(out, dict) else out
        total = sum((v * torch.linspace(-1, 1, v.numel(), dtype=v.dtype).reshape(v.shape))
                    .sum() for v in values)
        torch.autograd.grad(total, positions)

    rows = {}
    for name, atoms in structures().items():
        timings = {"fieldforce": [], "featomic": [], "response_step": []}
        for fn in (ours, featomic):  # warm up
            with_gradient(fn, atoms)
        for _ in range(args.repeat):
            for key, fn in (("fieldforce", ours), ("featomic", featomic)):
                start = time.perf_counter()
                with_gradient(fn, atoms)
                timings[key].append(time.perf_counter() - start)
            start = time.perf_counter()
            evaluate(model, batch_from_atoms(atoms), field=field)
            timings["response_step"].append(time.perf_counter() - start)
        row = {key: statistics.median(v) for key, v in timings.items()}
        row["speedup"] = row["featomic"] / row["fieldforce"]
        row["n_atoms"] = len(atoms)
        rows[name] = row
        print(f"{name:12s} featomic {1000 * row['featomic']:8.1f} ms  fieldforce "
              f"{1000 * row['fieldforce']:8.1f} ms  ({row['speedup']:.1f}x)  response step "
              f"{1000 * row['response_step']:8.1f} ms", flush=True)
    result = {"threads": args.threads, "repeat": args.repeat, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
