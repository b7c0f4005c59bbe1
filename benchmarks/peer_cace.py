"""CACE as a peer of the backbone (issue 13): the same split, side by side.

    python -m venv /tmp/cace && /tmp/cace/bin/pip install torch==2.13.0 <CACE checkout>
    python benchmarks/peer_cace.py --python /tmp/cace/bin/python --epochs 300

CACE (Cartesian atomic cluster expansion, BingqingCheng/cace; the short-range backbone
of CACE-LES) runs from its own code in its own environment (never vendored). This script
writes the split of ``backbone_variants.py`` (``--dataset``, ``--train-size`` as there)
as extxyz files and trains CACE in the peer's interpreter with the settings of CACE's own
water example (``examples/water_train.py``: cutoff 5.5 Å, 6 trainable Bessel functions,
12 radial channels, l_max 3, nu_max 3, one message-passing layer, readout [32, 16],
batch 2, Adam at 1e-2 with ReduceLROnPlateau, EMA, force weight 1000; energy weight 0.1
for the first 5/8 of the epochs, then 100), float32 as there, E0s the least-squares
average of the training set (CACE's ``compute_average_E0s``). Then it scores the test
frames and times one energy + forces evaluation of 192-atom periodic water (water
models only). Results: ``benchmarks/results/peer_cace[_DATASET].json``. Resumable: the
same command after a stop goes on from the last chunk of 10 epochs (``resume.pt`` in the
run's work folder, ``benchmarks/runs/peer_cace/<dataset>_cutoff<R>``; delete it to start
over).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the lines every CACE training program here starts with (imports; run after the
#: program has set ``train_path``, ``valid_path``, ``cutoff`` and ``seed``: the data, E0s,
#: loaders, species, the loss helper and the metrics); peer_les.py uses them too
CACE_IMPORTS = r"""
import json, statistics, sys, time, logging
import numpy as np, torch, ase.io
import cace
from cace.representations import Cace
from cace.modules import PolynomialCutoff, BesselRBF
from cace.models.atomistic import NeuralNetworkPotential
from cace.tasks.train import TrainingTask
from cace.tools import Metrics
"""
CACE_SETUP = r"""
torch.set_default_dtype(torch.float32)
cace.tools.setup_logger(level="INFO")
train = ase.io.read(train_path, ":")
e0 = cace.tools.compute_average_E0s(train, energy_key="ref_energy")
collection = cace.tasks.get_dataset_from_xyz(train_path=train_path, valid_path=valid_path,
                                             cutoff=cutoff, atomic_energies=e0, seed=seed)
train_loader = cace.tasks.load_data_loader(collection=collection, data_type="train",
                                           batch_size=2)
valid_loader = cace.tasks.load_data_loader(collection=collection, data_type="valid",
                                           batch_size=4)
device = cace.tools.init_device("cpu")
species = sorted({int(z) for a in train for z in a.numbers})
def loss(name, predict, w):
    return cace.tasks.GetLoss(target_name=name, predict_name=predict,
                              loss_fn=torch.nn.MSELoss(), loss_weight=w)
metrics = [Metrics(target_name="energy", predict_name="CACE_energy", name="e/atom",
                   per_atom=True),
           Metrics(target_name="forces", predict_name="CACE_forces", name="f")]
"""

#: CACE's water-example model (run after ``species``, ``cutoff`` and ``device`` are set);
#: step_cost_vs_mace.py times it too
CACE_MODEL = r"""
representation = Cace(zs=species, n_atom_basis=3, embed_receiver_nodes=True, cutoff=cutoff,
                      cutoff_fn=PolynomialCutoff(cutoff=cutoff),
                      radial_basis=BesselRBF(cutoff=cutoff, n_rbf=6, trainable=True),
                      n_radial_basis=12, max_l=3, max_nu=3, num_message_passing=1,
                      type_message_passing=["Bchi"], device=device, timeit=False)
atomwise = cace.modules.atomwise.Atomwise(n_layers=3, output_key="CACE_energy",
                                          n_hidden=[32, 16], use_batchnorm=False,
                                          add_linear_nn=True)
forces = cace.modules.forces.Forces(energy_key="CACE_energy", forces_key="CACE_forces")
model = NeuralNetworkPotential(input_modules=None, representation=representation,
                               output_modules=[atomwise, forces])
model.to(device)
"""

TRAIN = CACE_IMPORTS + r"""
train_path, valid_path, test_path, box_path, epochs, cutoff, seed = sys.argv[1:8]
epochs, cutoff, seed = int(epochs), float(cutoff), int(seed)
torch.manual_seed(seed)
""" + CACE_SETUP + r"""
""" + CACE_MODEL + r"""
# CACE's readout and its message-passing filter network build their layers at their first
# call: one forward pass before the TrainingTask is made puts them in its optimizer (and in
# its EMA copy). Made before it, as in this script until 2026-12-07, the optimizer trained
# only the representation's weights (2,616 of BaTiO3's 46,611) and left the readout at its
# random start; CACE's own example gets them in by remaking the task every 40 epochs.
model(next(iter(valid_loader)).to_dict(), training=False)
task = TrainingTask(model=model, losses=[loss("energy", "CACE_energy", 0.1),
                                         loss("forces", "CACE_forces", 1000)],
                    metrics=metrics, device=device, optimizer_args={"lr": 1e-2},
                    scheduler_cls=torch.optim.lr_scheduler.ReduceLROnPlateau,
                    scheduler_args={"mode": "min", "factor": 0.8, "patience": 10},
                    max_grad_norm=10, ema=True, ema_start=10, warmup_steps=5)
first = max(1, (5 * epochs) // 8)
# resumable: CACE's own fit() has no resume, so it runs in chunks of CHUNK epochs and,
# after each, TrainingTask.checkpoint() (model, EMA, optimizer, plateau scheduler) plus
# the epoch count, CACE's global_step (its warm-up and EMA start count epochs) and the
# RNG state go to resume.pt, written to a temporary name and moved into place; a run
# resumed from it takes the same steps as one never stopped (only CACE's unused
# best_model.pth forgets the best validation loss of earlier chunks)
import os
CHUNK, done, seconds = 10, 0, 0.0
if os.path.exists("resume.pt"):
    state = torch.load("resume.pt", weights_only=False)
    if state["total"] != epochs:
        sys.exit(f"resume.pt in {os.getcwd()} is a run of {state['total']} epochs, not "
                 f"{epochs}: delete it to start over")
    task.load_state_dict(state["task"])
    done, seconds, task.global_step = state["epochs"], state["seconds"], state["global_step"]
    torch.set_rng_state(state["rng"]); np.random.set_state(state["np_rng"])
    print(f"resumed after epoch {done} of {epochs}", file=sys.stderr, flush=True)
while done < epochs:
    if done >= first:
        task.update_loss([loss("energy", "CACE_energy", 100),
                          loss("forces", "CACE_forces", 1000)])
    n = min(CHUNK, (first if done < first else epochs) - done)
    start = time.perf_counter()
    task.fit(train_loader, valid_loader, epochs=n, screen_nan=False, checkpoint_path=None)
    done, seconds = done + n, seconds + time.perf_counter() - start
    task.checkpoint("resume.tmp")
    state = {"task": torch.load("resume.tmp", weights_only=False), "epochs": done, "total": epochs,
             "seconds": seconds, "global_step": task.global_step,
             "rng": torch.get_rng_state(), "np_rng": np.random.get_state()}
    torch.save(state, "resume.tmp"); os.replace("resume.tmp", "resume.pt")
    print(f"epoch {done} of {epochs}, {seconds:.0f} s", file=sys.stderr, flush=True)
model = task.ema_model.module if getattr(task, "ema_model", None) is not None else task.model
from cace.tasks import EvaluateTask
evaluator = EvaluateTask(model_path=model, device="cpu", energy_key="CACE_energy",
                         forces_key="CACE_forces", atomic_energies=e0)
test = ase.io.read(test_path, ":")
de, df = [], []
for atoms in test:
    out = evaluator(atoms)
    de.append((float(np.ravel(out["energy"])[0]) - atoms.info["ref_energy"]) / len(atoms))
    df.append((np.asarray(out["forces"]).reshape(-1, 3) - atoms.arrays["ref_forces"]).ravel())
times = [None]
if box_path != "none":
    box = ase.io.read(box_path).repeat((2, 2, 2))
    evaluator(box)
    times = []
    for _ in range(5):
        box.positions[0, 0] += 1e-4
        begin = time.perf_counter(); evaluator(box); times.append(time.perf_counter() - begin)
print(json.dumps({"energy_meV_per_atom": 1000 * float(np.sqrt(np.mean(np.square(de)))),
                  "forces_eV_per_A": float(np.sqrt(np.mean(np.square(np.concatenate(df))))),
                  "step_cost_192_s": None if times == [None] else statistics.median(times),
                  "n_test": len(test),
                  "train_seconds": seconds, "e0": {str(k): v for k, v in e0.items()}}))
"""


def write_extxyz(path: Path, frames) -> None:
    """Frames as extxyz with ``ref_energy``/``ref_forces`` (the keys CACE's loader reads)."""
    import ase.io
    import numpy as np

    images = []
    for f in frames:
        atoms = f.atoms.copy()
        atoms.info = {"ref_energy": float(f.labels["energy"])}
        atoms.arrays["ref_forces"] = np.asarray(f.labels["forces"], dtype=float)
        images.append(atoms)
    ase.io.write(path, images, format="extxyz")


def write_split(work: Path, dataset: str, data_dir: Path, train_size: int | None):
    """The split as extxyz with ``ref_energy``/``ref_forces`` (the keys CACE reads)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from backbone_variants import splits

    paths = {}
    parts = splits(0, dataset, data_dir, train_size)
    for name, frames in zip(("train", "valid", "test"), parts, strict=True):
        paths[name] = work / f"{name}.xyz"
        write_extxyz(paths[name], frames)
    return paths, len(parts[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True, help="the peer environment's python")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--cutoff", type=float, default=5.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="water",
                        choices=("water", "liquid_water", "des370k_dimers", "batio3"))
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--train-size", type=int, default=None)
    # under benchmarks/runs (kept in the working tree, not ignored as runs/ is), so a
    # resumable run's resume.pt outlives the machine it ran on, as peer_mace.py's checkpoints
    parser.add_argument("--work", type=Path,
                        default=ROOT / "benchmarks" / "runs" / "peer_cace")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/peer_cace[_DATASET].json")
    args = parser.parse_args()
    key = f"cutoff{args.cutoff:g}" + (f"@n{args.train_size}" if args.train_size else "")
    work = args.work / f"{args.dataset}_{key}"
    work.mkdir(parents=True, exist_ok=True)
    paths, n_train = write_split(work, args.dataset, args.data_dir, args.train_size)
    box = str(ROOT / "examples" / "water_box.xyz") if args.dataset == "water" else "none"
    env = {"OMP_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    log_path = work / "train.log"
    with open(log_path, "a") as log:  # streamed, so a stopped run's log is kept; appended on resume
        done = subprocess.run([args.python, "-c", TRAIN, str(paths["train"]),
                               str(paths["valid"]), str(paths["test"]), box, str(args.epochs),
                               str(args.cutoff), "0"],
                              cwd=work, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    # CACE's own log (its per-epoch validation errors, time-stamped) is on stdout, before
    # the result line: kept beside train.log, appended on resume
    with open(work / "cace.log", "a") as log:
        lines = done.stdout.splitlines(keepends=True)
        log.write("".join(lines if done.returncode else lines[:-1]))
    if done.returncode:
        raise SystemExit(f"CACE failed (log: {log_path}):\n{log_path.read_text()[-3000:]}")
    row = {**json.loads(done.stdout.strip().splitlines()[-1]), "epochs": args.epochs,
           "cutoff": args.cutoff, "threads": args.threads, "dataset": args.dataset,
           "n_train": n_train, "wall_seconds": time.perf_counter() - start}
    suffix = "" if args.dataset == "water" else f"_{args.dataset}"
    out = args.out or ROOT / "benchmarks" / "results" / f"peer_cace{suffix}.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    results[key] = row
    out.with_suffix(".tmp").write_text(json.dumps(results, indent=1) + "\n")
    out.with_suffix(".tmp").replace(out)
    print(f"CACE {key}: E {row['energy_meV_per_atom']:.3f} meV/atom, F "
          f"{row['forces_eV_per_A']:.4f} eV/Å, {row['train_seconds']:.0f} s training")


if __name__ == "__main__":
    main()
