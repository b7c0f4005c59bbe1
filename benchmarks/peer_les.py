"""CACE-LES (Latent Ewald Summation, B. Cheng's group) as a peer of the latent-charge model.

    git clone <BingqingCheng/cace> /tmp/cace_src
    python3 -m venv /tmp/cace && /tmp/cace/bin/pip install torch==2.13.0
    /tmp/cace/bin/pip install /tmp/cace_src
    python benchmarks/peer_les.py --python /tmp/cace/bin/python --epochs 5 --max-frames 60
    for s in 0 1 2; do
        python benchmarks/peer_les.py --python /tmp/cace/bin/python --epochs 100 --seed $s
    done

(``--epochs 100``: a fifth of the authors' 500 epochs, 20,400 optimizer steps on the
409 zero-field training frames at batch 2; about 17 min alone on one free core, 45 min
with three runs side by side on a loaded 2-core machine.)

The reference implementation runs from its own code in its own environment (never
vendored). This script writes the split of ``latent_water.py`` (the shipped water set,
``splits(max_frames)``) as extxyz files, keeping for training and validation only the
zero-field frames, as the ``latent_zero_field`` variant there does (energies and forces
alone: CACE-LES has no term for the applied field), and trains CACE-LES in the peer's
interpreter with the settings of the authors' water fit (BingqingCheng/cace-lr-fit,
``fit-water/fit-water-mp0/fit-cace-nnp.py``): CACE with cutoff 5.5 Å, 6 trainable
Bessel functions, 12 radial channels, l_max 3, nu_max 3, no message passing; energy
readout [32, 16]; charge head ``Atomwise(n_layers=3, n_hidden=[24, 12], residual=False,
add_linear_nn=True, bias=False)``; ``EwaldPotential(dl=2, sigma=1,
remove_self_interaction=False)`` added with weight 0.01 by ``CombinePotential``; batch 2,
force weight 1000, Adam (lr 1e-2, betas 0.99/0.999), StepLR(20 epochs, 0.5), grad norm
10, 5 warm-up epochs, no EMA; float32; E0s the least-squares average of the training set
(``compute_average_E0s``). One deviation: ``n_out=1`` (the authors' water fit has 4
charge channels) so that each atom has one charge and the dipole and Born charges are
defined as in the LES Born-charge work (Zhong et al. 2025).

The schedule: the authors train 5 restarted cycles of 40 epochs at energy weight 0.1
(a fresh Adam and StepLR each), then 100 epochs each at energy weight 1, 10 and 1000
(500 epochs). ``--epochs`` sets the total; every length counted in epochs (cycles,
stages, StepLR step, warm-up) is scaled by epochs/500 (rounded, at least 1; warm-up
may round to 0), so ``--epochs 500`` is the authors' schedule. The final model is
scored (the authors save the last model).

Charges: CACE's Ewald sum has norm factor 1 (charges carry sqrt(90.0474), its comment)
and the combination weight 0.01 scales its energy, so the physical charge implied by the
model's own Coulomb energy is q = q_latent * sqrt(0.01 / 90.0474) (the authors divide by
9.4893 when the weight is 1; ``sign_fixed_unit_w1_*`` scores that reading too). As in
the LES library's ``BEC`` (``remove_mean=True``), each frame's mean charge is removed,
M = sum_j q_j r_j (isolated clusters: CACE uses the real-space sum for a zero cell,
which the shipped frames have), and Z*_{i,ab} = dM_a/dr_ib by autograd through the
charge network, in float32. The sign of latent charges is not fixed by zero-field
energies and forces (q -> -q): the scores are given as they come (``born_rmse`` ...)
and with the global sign chosen so that oxygen's mean charge on the test set is
negative (``sign_fixed_born_rmse`` ...; ``sign_flipped`` says whether that flipped it).
Scored with ``latent_water.charge_scores`` against the DFT Born charges and dipoles of
all test frames, next to its TIP3P and zero-charge baselines. ``--fieldforce`` copies
the ``latent_zero_field`` row of a ``latent_water.py`` result (same split) beside it;
``--rescore`` scores a finished run's saved predictions again without training.

Seeds: building CACE reseeds torch (atom embeddings with 42, the radial transform with
0), which would override any seed set before. ``--seed 0`` keeps CACE's own seeding;
``--seed s`` sets the embedding seeds to 42 + s and reseeds torch with s after building
the representation (readout and charge-head initialisation, batch order); the radial
transform's initialisation is the same for all seeds. Results:
``benchmarks/results/peer_les.json``, keyed by variant, seed and epochs.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from peer_cace import CACE_IMPORTS, CACE_SETUP, write_extxyz

ROOT = Path(__file__).resolve().parent.parent

TRAIN = CACE_IMPORTS + r"""
from cace.data import AtomicData
from cace.tools.torch_geometric.batch import Batch

(train_path, valid_path, test_path, out_path, epochs, cutoff, seed, threads,
 weight) = sys.argv[1:10]
epochs, cutoff, seed, threads, weight = (int(epochs), float(cutoff), int(seed), int(threads),
                                         float(weight))
torch.set_num_threads(threads)
torch.manual_seed(seed)
np.random.seed(seed)
""" + CACE_SETUP + r"""
representation = Cace(zs=species, n_atom_basis=3, embed_receiver_nodes=True, cutoff=cutoff,
                      cutoff_fn=PolynomialCutoff(cutoff=cutoff),
                      radial_basis=BesselRBF(cutoff=cutoff, n_rbf=6, trainable=True),
                      n_radial_basis=12, max_l=3, max_nu=3, num_message_passing=0,
                      type_message_passing=["Bchi"],
                      args_message_passing={"Bchi": {"shared_channels": False,
                                                     "shared_l": False}},
                      atom_embedding_random_seed=[42 + seed, 42 + seed],
                      device=device, timeit=False)
if seed:  # CACE reseeds torch while building (embeddings 42, radial transform 0)
    torch.manual_seed(seed)
atomwise = cace.modules.atomwise.Atomwise(n_layers=3, output_key="CACE_energy",
                                          n_hidden=[32, 16], use_batchnorm=False,
                                          add_linear_nn=True)
forces = cace.modules.forces.Forces(energy_key="CACE_energy", forces_key="CACE_forces")
sr = NeuralNetworkPotential(input_modules=None, representation=representation,
                            output_modules=[atomwise, forces])
q = cace.modules.Atomwise(n_layers=3, n_hidden=[24, 12], n_out=1, per_atom_output_key="q",
                          output_key="tot_q", residual=False, add_linear_nn=True, bias=False)
ewald = cace.modules.EwaldPotential(dl=2, sigma=1., feature_key="q",
                                    output_key="ewald_potential",
                                    remove_self_interaction=False, aggregation_mode="sum")
forces_lr = cace.modules.Forces(energy_key="ewald_potential", forces_key="ewald_forces")
lr = NeuralNetworkPotential(input_modules=None, representation=representation,
                            output_modules=[q, ewald, forces_lr])
model = cace.models.CombinePotential(
    [sr, lr], [{"CACE_energy": "CACE_energy", "CACE_forces": "CACE_forces"},
               {"CACE_energy": "ewald_potential", "CACE_forces": "ewald_forces",
                "weight": weight}])
model.to(device)
scale = epochs / 500
cycle, stage = max(1, round(40 * scale)), max(1, round(100 * scale))
step_size, warmup = max(1, round(20 * scale)), round(5 * scale)
schedule = [(0.1, cycle, True)] * 5 + [(1.0, stage, False), (10.0, stage, False),
                                       (1000.0, stage, False)]
steps, done_epochs, stages = 0, 0, []
start = time.perf_counter()
for energy_weight, n, fresh in schedule:
    losses = [loss("energy", "CACE_energy", energy_weight), loss("forces", "CACE_forces", 1000)]
    if fresh:
        task = TrainingTask(model=model, losses=losses, metrics=metrics, device=device,
                            optimizer_args={"lr": 1e-2, "betas": (0.99, 0.999)},
                            scheduler_cls=torch.optim.lr_scheduler.StepLR,
                            scheduler_args={"step_size": step_size, "gamma": 0.5},
                            max_grad_norm=10, ema=False, ema_start=10, warmup_steps=warmup)
    else:
        task.update_loss(losses)
    task.fit(train_loader, valid_loader, epochs=n, screen_nan=False,
             val_stride=min(10, n) if fresh else 1)
    steps += n * len(train_loader)
    done_epochs += n
    stages.append({"energy_weight": energy_weight, "epochs": n, "steps": steps,
                   "seconds": time.perf_counter() - start,
                   "lr": task.optimizer.param_groups[0]["lr"]})
    logging.info(f"stage done: {stages[-1]}")
seconds = time.perf_counter() - start

unit = (weight / 90.0474) ** 0.5
test = ase.io.read(test_path, ":")
out = {k: [] for k in ("energy", "forces", "charges", "charges_raw", "born_charges",
                       "dipole")}
model.eval()
for atoms in test:
    data = AtomicData.from_atoms(atoms, cutoff=cutoff)
    batch = Batch.from_data_list([data]).to_dict()
    res = model(batch, training=True)
    r = batch["positions"]
    q_raw = res["q"][:, 0] * unit
    qn = q_raw - q_raw.mean()
    dipole = (qn[:, None] * r).sum(0)
    born = torch.stack([torch.autograd.grad(dipole[a], r, retain_graph=True)[0]
                        for a in range(3)], dim=1)
    energy = float(res["CACE_energy"].detach().reshape(-1)[0])
    out["energy"].append(energy + sum(e0[int(z)] for z in atoms.numbers))
    out["forces"].append(res["CACE_forces"].detach().numpy())
    out["charges"].append(qn.detach().numpy())
    out["charges_raw"].append(q_raw.detach().numpy())
    out["born_charges"].append(born.detach().numpy())
    out["dipole"].append(dipole.detach().numpy())
np.savez(out_path, **{k: np.stack(v) if k in ("energy", "dipole") else np.concatenate(v)
                      for k, v in out.items()})
print(json.dumps({"steps": steps, "epochs": done_epochs, "train_seconds": seconds,
                  "steps_per_second": steps / seconds, "steps_per_epoch": len(train_loader),
                  "stages": stages, "charge_unit": unit, "n_train": len(train),
                  "n_valid": len(collection.valid), "e0": {str(k): v for k, v in e0.items()},
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "torch": torch.__version__}))
"""


def train_peer(python: str, paths: dict, work: Path, epochs: int, cutoff: float, seed: int,
               threads: int, weight: float) -> None:
    """Train CACE-LES in the peer's interpreter on ``paths`` (train/valid/test extxyz with
    ``ref_energy``/``ref_forces``); its log, errors and test predictions go to ``work``."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PATH": "/usr/bin:/bin"}
    with open(work / "train.log", "w") as log, open(work / "train.err", "w") as err:
        done = subprocess.run([python, "-c", TRAIN, str(paths["train"]), str(paths["valid"]),
                               str(paths["test"]), str(work / "test_predictions.npz"),
                               str(epochs), str(cutoff), str(seed), str(threads), str(weight)],
                              cwd=work, env=env, stdout=log, stderr=err, text=True)
    if done.returncode:
        raise SystemExit(f"CACE-LES failed (log: {work / 'train.err'}):\n"
                         f"{(work / 'train.err').read_text()[-3000:]}")


def peer_output(work: Path) -> tuple[dict, dict]:
    """(the training's summary, the test predictions) a finished :func:`train_peer` left."""
    meta = json.loads((work / "train.log").read_text().strip().splitlines()[-1])
    with np.load(work / "test_predictions.npz") as f:
        return meta, {k: f[k] for k in f.files}


def write_split(work: Path, max_frames: int | None):
    """latent_water's split as extxyz (``ref_energy``/``ref_forces``), zero-field train/valid."""
    from latent_water import has_field, splits

    train, valid, test = splits(max_frames)
    parts = {"train": [f for f in train if not has_field(f)],
             "valid": [f for f in valid if not has_field(f)], "test": test}
    paths = {name: work / f"{name}.xyz" for name in parts}
    for name, frames in parts.items():
        write_extxyz(paths[name], frames)
    return paths, parts


def score(pred: dict, test, weight: float) -> dict:
    """Energies, forces and charge scores (raw and sign-fixed) with latent_water's metrics.

    Supplementary, ``sign_fixed_unit_w1_*``: the same with the charges q_latent / 9.4893,
    the authors' conversion for their fits whose Ewald weight is 1 (i.e. ignoring the 0.01
    weight of the water fit: 10 times larger charges).
    """
    from latent_water import charge_scores, reference, rmse

    ref = reference(test)
    zero, atom_zero = ~ref["field"], ~ref["atom_field"]
    n_atoms = np.array([len(f.atoms) for f in test])
    energy = pred["energy"] / n_atoms
    row = {"n_test": len(test), "n_test_zero_field": int(zero.sum()),
           "energy_rmse_meV_per_atom": 1000 * rmse(energy, ref["energy"]),
           "forces_rmse": rmse(pred["forces"], ref["forces"]),
           "energy_rmse_meV_per_atom_zero_field": 1000 * rmse(energy[zero], ref["energy"][zero]),
           "forces_rmse_zero_field": rmse(pred["forces"][atom_zero], ref["forces"][atom_zero])}
    born, dipole, charges = pred["born_charges"], pred["dipole"], pred["charges"]
    row.update(charge_scores(born, dipole, charges, ref, ""))
    sign = -1.0 if charges[ref["numbers"] == 8].mean() > 0 else 1.0
    row["sign_flipped"] = sign < 0
    row.update(charge_scores(sign * born, sign * dipole, sign * charges, ref, "sign_fixed_"))
    alt = sign / weight ** 0.5
    row.update(charge_scores(alt * born, alt * dipole, alt * charges, ref, "sign_fixed_unit_w1_"))
    offsets = np.cumsum([0] + list(n_atoms))
    net = np.add.reduceat(pred["charges_raw"], offsets[:-1])
    row["net_charge_rms_before_mean_removal"] = float(np.sqrt(np.mean(net ** 2)))
    return row


def fieldforce_row(path: Path) -> dict | None:
    """The ``latent_zero_field`` row of a latent_water.py result (same split), for comparison."""
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    for r in result.get("rows", []):
        if r.get("variant") == "latent_zero_field":
            return {"source": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT)
                    else str(path), "command": result.get("command"),
                    **{k: v for k, v in r.items() if k != "model"}}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True, help="the peer environment's python")
    parser.add_argument("--epochs", type=int, default=500,
                        help="total epochs, split over the stages as 200:100:100:100 (the "
                             "authors' 500)")
    parser.add_argument("--seed", type=int, default=0, help="the peer's training seed "
                        "(the data split is latent_water.py's, always the same)")
    parser.add_argument("--cutoff", type=float, default=5.5)
    parser.add_argument("--ewald-weight", type=float, default=0.01,
                        help="CombinePotential weight of the Ewald energy (authors: 0.01)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=None,
                        help="a random subset of the data (quick checks; as latent_water.py)")
    parser.add_argument("--fieldforce", type=Path,
                        default=ROOT / "benchmarks" / "results" / "latent_water.json",
                        help="latent_water.py result whose latent_zero_field row to copy")
    parser.add_argument("--rescore", action="store_true",
                        help="score the predictions a finished run left in its work folder "
                             "again (no training)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "peer_les")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "peer_les.json")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    key = (f"latent_zero_field@seed{args.seed}@epochs{args.epochs}"
           + (f"@frames{args.max_frames}" if args.max_frames else "")
           + (f"@w{args.ewald_weight:g}" if args.ewald_weight != 0.01 else ""))
    work = args.work / key
    work.mkdir(parents=True, exist_ok=True)
    paths, parts = write_split(work, args.max_frames)
    start = time.perf_counter()
    if not args.rescore:
        train_peer(args.python, paths, work, args.epochs, args.cutoff, args.seed,
                   args.threads, args.ewald_weight)
    meta, pred = peer_output(work)
    from latent_water import baseline

    test = parts["test"]
    row = {"variant": "latent_zero_field", "seed": args.seed, "epochs_option": args.epochs,
           "cutoff": args.cutoff, "ewald_weight": args.ewald_weight, "n_out": 1,
           "threads": args.threads, "max_frames": args.max_frames,
           "dtype": "float32", "born_charges": "dM/dr by autograd, per-frame mean charge "
           "removed (LES BEC remove_mean)",
           "command": " ".join(["python benchmarks/peer_les.py --python <peer python>",
                                f"--epochs {args.epochs} --seed {args.seed}"]
                               + ([f"--max-frames {args.max_frames}"] if args.max_frames
                                  else [])
                               + ([f"--ewald-weight {args.ewald_weight:g}"]
                                  if args.ewald_weight != 0.01 else [])),
           **meta, **score(pred, test, args.ewald_weight),
           "wall_seconds": time.perf_counter() - start,
           "baseline": baseline(test), "fieldforce": fieldforce_row(args.fieldforce)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.work / "results.lock", "w") as lock:  # seeds may run side by side
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(args.out.read_text()) if args.out.exists() else {}
        if args.rescore and key in results:
            row["wall_seconds"] = results[key]["wall_seconds"]
        results[key] = row
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"CACE-LES {key}: {row['steps']} steps in {row['train_seconds']:.0f} s "
          f"({row['steps_per_second']:.1f}/s); E {row['energy_rmse_meV_per_atom']:.2f} "
          f"meV/atom, F {row['forces_rmse']:.4f} eV/Å; Z* RMSE {row['born_rmse']:.3f} e "
          f"(sign-fixed {row['sign_fixed_born_rmse']:.3f}, flipped: {row['sign_flipped']}), "
          f"dipole {row['dipole_rmse']:.3f} / {row['sign_fixed_dipole_rmse']:.3f} e·Å, "
          f"<q_O> {row['sign_fixed_mean_charge_O']:+.3f}, "
          f"<q_H> {row['sign_fixed_mean_charge_H']:+.3f} e; TIP3P Z* "
          f"{row['baseline']['born_rmse']:.3f}, zero {row['baseline']['born_rmse_zero']:.3f}")


if __name__ == "__main__":
    main()
