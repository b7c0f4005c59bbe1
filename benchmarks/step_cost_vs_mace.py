"""Step cost against MACE, in one run (issue 13, "keep the speed lead").

    python -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.13.0 mace-torch
    python benchmarks/step_cost_vs_mace.py --python /tmp/peers/bin/python --threads 2
    python benchmarks/step_cost_vs_mace.py --python /tmp/peers/bin/python --peers small medium

Periodic water at 1 g/cm³ (``examples/water_box.xyz`` repeated: 192 and 768 atoms).
fieldforce: one energy + forces + dipole evaluation of the response model in a uniform
0.1 V/Å field (field terms on: lambda-SOAP features and their gradients), for each
architecture in ``--configs`` (``latent_*``: the latent-charge family instead, energy +
forces with its Coulomb sum and Born-charge field force, in the same field; untrained
weights of the default architecture: the cost does not depend on their values). MACE:
one energy + forces evaluation through its ASE calculator (float64) of each size in
``--peers``, the sizes of ``peer_mace.py`` (small: the issue's 96x0e, two interactions,
max_L 0; medium: 64x0e + 64x1o, max_L 1), cutoff
``--r-max`` (5 Å, MACE's default; the accuracy runs of ``peer_mace.py`` use 4 Å), each
made with ``mace_run_train`` for one epoch on 20 frames, in its own environment. They are
timed alternately, A B A B, ``--repeat`` evaluations each time after a warm-up; the
medians are compared (``mace_over_fieldforce`` for the small model, the key of the
earlier files, ``mace_medium_over_fieldforce`` for the medium one). ``--committee K``
adds, for each config, a committee of K such models (``<config>_committee<K>``, the
members' mean: K evaluations) and the same with the members' force spread
(``<config>_committee<K>_sigma``: K more backward passes, what an MD step that monitors
the spread pays). ``--cace-python`` times CACE too (``peer_cace.py``'s model, its water
example's, float32, cutoff ``--cace-cutoff``; ``cace_over_fieldforce``). Writes
``benchmarks/results/step_cost_vs_mace.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from peer_cace import CACE_IMPORTS, CACE_MODEL
from peer_mace import SIZES as MACE_SIZES

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "default": {},
    "interactions1": {"interactions": 1},
    "interactions2": {"interactions": 2},
    # the issue-13 candidate: radial scaling r0 3 Å, m 6 with a 5 Å cutoff (descriptor and
    # interaction layer)
    "scaling_cutoff5": {"interactions": 1,
                        "descriptor": {"radial_scaling": [3.0, 6], "cutoff": 5.0}},
    # two layers passing l = 1 vectors, at 4 Å and with the 5 Å weighted descriptor
    "vectors2": {"interactions": 2, "interaction_vectors": True},
    "scaling_cutoff5_vectors2": {"interactions": 2, "interaction_vectors": True,
                                 "descriptor": {"radial_scaling": [3.0, 6], "cutoff": 5.0}},
    # liquid water's and BaTiO3's best option: radial scaling at 4 Å, two layers passing
    # vectors
    "scaling_vectors2": {"interactions": 2, "interaction_vectors": True,
                         "descriptor": {"radial_scaling": [3.0, 6]}},
    # liquid water's best option is that architecture in the latent family: the same
    # backbone plus its latent charges' Coulomb sum (torch-pme) and their energy in the field
    "latent_scaling_vectors2": {"family": "latent", "interactions": 2,
                                "interaction_vectors": True,
                                "descriptor": {"radial_scaling": [3.0, 6]}},
    # the DES370K dimers' option: the same with one network for all species (8-dim
    # embedding) and 2 learned species channels (on water's 2 species the channels mix
    # 2 densities into 2, the cost of the 8-element case per channel)
    "dimers_vectors2": {"interactions": 2, "interaction_vectors": True,
                        "species_embedding": 8,
                        "descriptor": {"radial_scaling": [3.0, 6], "species_channels": 2}},
}
SIZES = {"192": (2, 2, 2), "768": (4, 4, 2)}
#: the timing loop every peer program ends with, after defining ``run(atoms)`` (one energy +
#: forces evaluation); argv: the peer's own argument (MACE's model file, CACE's cutoff), the
#: box, threads, {size: repetition of the box}, evaluations per size
TIMING_LOOP = r"""
box = ase.io.read(sys.argv[2])
out = {}
for name, rep in json.loads(sys.argv[4]).items():
    atoms = box.repeat(rep)
    run(atoms)  # warm-up
    times = []
    for _ in range(int(sys.argv[5])):
        atoms.positions[0, 0] += 1e-4
        start = time.perf_counter(); run(atoms); times.append(time.perf_counter() - start)
    out[name] = times
print(json.dumps(out))
"""
MACE_TIMING = """
import json, statistics, sys, time
import ase.io, torch
torch.set_num_threads(int(sys.argv[3]))
from mace.calculators import MACECalculator
calc = MACECalculator(model_paths=sys.argv[1], device="cpu", default_dtype="float64")
def run(atoms):
    atoms.calc = calc
    atoms.get_forces()
""" + TIMING_LOOP


#: CACE (peer_cace.py's model: its water example, float32) timed the same way; its
#: readout builds at the first call, the warm-up; the cost does not depend on the weights
CACE_TIMING = CACE_IMPORTS + r"""
from cace.tasks import EvaluateTask
torch.set_num_threads(int(sys.argv[3]))
torch.set_default_dtype(torch.float32)
species, cutoff, device = [1, 8], float(sys.argv[1]), torch.device("cpu")
""" + CACE_MODEL + r"""
calc = EvaluateTask(model_path=model, device="cpu", energy_key="CACE_energy",
                    forces_key="CACE_forces", atomic_energies={1: 0.0, 8: 0.0})
run = calc
""" + TIMING_LOOP


def peer_model(python: str, work: Path, size: str, r_max: float) -> Path:
    """A MACE of ``size`` (one epoch on 20 shipped frames), made once and reused."""
    name = f"{size}_mace" + ("" if r_max == 5.0 else f"_r{r_max:g}")
    model = work / f"{name}.model"
    if model.exists():
        return model
    import ase.io

    from fieldforce.datasets import load_water

    work.mkdir(parents=True, exist_ok=True)
    frames = []
    for frame in load_water()[:20]:
        atoms = frame.atoms.copy()
        atoms.info = {"REF_energy": float(frame.labels["energy"])}
        atoms.arrays["REF_forces"] = frame.labels["forces"]
        frames.append(atoms)
    ase.io.write(work / "train.xyz", frames)
    layers = MACE_SIZES[size]
    command = [str(Path(python).parent / "mace_run_train"), "--name", name,
               "--train_file", str(work / "train.xyz"), "--valid_fraction", "0.2",
               "--hidden_irreps", layers["hidden_irreps"],
               "--num_interactions", str(layers["num_interactions"]),
               "--max_L", str(layers["max_L"]),
               "--r_max", str(r_max), "--max_num_epochs", "1", "--batch_size", "5",
               "--default_dtype", "float64", "--device", "cpu", "--energy_key", "REF_energy",
               "--forces_key", "REF_forces", "--E0s", "average", "--seed", "0"]
    subprocess.run(command, cwd=work, check=True, capture_output=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True, help="the MACE environment's python")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--peers", nargs="+", default=["small"], choices=list(MACE_SIZES),
                        help="MACE sizes timed beside fieldforce (the first is the reference "
                             "of the printed ratio)")
    parser.add_argument("--r-max", type=float, default=5.0, help="the MACE models' cutoff, Å")
    parser.add_argument("--cace-python", default=None,
                        help="also time CACE (peer_cace.py's model) in this environment")
    parser.add_argument("--cace-cutoff", type=float, default=5.5,
                        help="CACE's cutoff, Å (5.5: its water example, the accuracy runs')")
    parser.add_argument("--committee", type=int, default=0, metavar="K",
                        help="also time each config as a committee of K models")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "step_cost_vs_mace")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "step_cost_vs_mace.json")
    args = parser.parse_args()
    import ase.io
    import torch

    from fieldforce.data.atomic import write_json
    from fieldforce.data.batch import batch_from_atoms
    from fieldforce.datasets import load_water
    from fieldforce.models import CommitteeModel, build_model, evaluate

    torch.set_num_threads(args.threads)
    peers = {size: peer_model(args.python, args.work, size, args.r_max) for size in args.peers}
    # each peer: the program, its arguments and its interpreter
    timed = {f"mace_{size}": (MACE_TIMING, str(path), args.python)
             for size, path in peers.items()}
    if args.cace_python:
        timed["cace"] = (CACE_TIMING, str(args.cace_cutoff), args.cace_python)
    box = ROOT / "examples" / "water_box.xyz"
    field = torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    models, requests = {}, {}
    frames = load_water()[:50]
    for name in args.configs:
        built = []
        for _ in range(max(1, args.committee)):
            model = build_model({"family": "response", "species": [1, 8], **CONFIGS[name]})
            model.fit_statistics(frames)
            built.append(model)
        models[name] = built[0]
        if args.committee >= 2:
            committee = CommitteeModel.from_models(built)
            models[f"{name}_committee{args.committee}"] = committee
            models[f"{name}_committee{args.committee}_sigma"] = committee
            requests[f"{name}_committee{args.committee}_sigma"] = {"forces_uncertainty"}
    atoms = {size: ase.io.read(box).repeat(rep) for size, rep in SIZES.items()}
    times: dict[str, dict[str, list[float]]] = {size: {} for size in SIZES}
    for _ in range(2):  # A B A B
        for peer, (program, first_argument, python) in timed.items():
            result = subprocess.run([python, "-c", program, first_argument, str(box),
                                     str(args.threads), json.dumps(SIZES), str(args.repeat)],
                                    check=True, capture_output=True, text=True)
            for size, values in json.loads(result.stdout.strip().splitlines()[-1]).items():
                times[size].setdefault(peer, []).extend(values)
        for size, structure in atoms.items():
            for name, model in models.items():
                asked = requests.get(name)
                evaluate(model, batch_from_atoms(structure), field=field,
                         requests=asked)  # warm up
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    evaluate(model, batch_from_atoms(structure), field=field, requests=asked)
                    times[size].setdefault(name, []).append(time.perf_counter() - start)
    rows = {}
    first = f"mace_{args.peers[0]}"
    for size, by_name in times.items():
        peer_times = {peer: statistics.median(by_name[peer]) for peer in timed}
        rows[size] = {}
        for name, values in by_name.items():
            median = statistics.median(values)
            rows[size][name] = {"median_s": median}
            for peer, peer_time in peer_times.items():
                # "mace_over_fieldforce" (the small model) is the key of the earlier files
                key = ("mace_over_fieldforce" if peer == "mace_small"
                       else f"{peer}_over_fieldforce")
                rows[size][name][key] = peer_time / median
        for name, row in rows[size].items():
            print(f"{size:>4s} atoms  {name:24s} {1000 * row['median_s']:8.1f} ms   {first} / "
                  f"this {peer_times[first] / row['median_s']:5.2f}", flush=True)
    write_json({"threads": args.threads, "repeat": args.repeat, "field_V_per_A": 0.1,
                "peers": args.peers, "r_max": args.r_max, "committee": args.committee,
                "cace_cutoff": args.cace_cutoff if args.cace_python else None,
                "rows": rows}, args.out)


if __name__ == "__main__":
    main()
