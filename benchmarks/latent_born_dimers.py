"""Born charges from energies and forces on the DES370K/SPICE dimers: fieldforce's latent
model and the reference CACE-LES side by side, on the identical split (issue 17).

    python benchmarks/latent_born_dimers.py --code fieldforce --seed 0 --threads 1
    python benchmarks/latent_born_dimers.py --code fieldforce --seed 0 --threads 1 \\
        --set "descriptor={species_channels: 2}" --tag mixed2
    python benchmarks/latent_born_dimers.py --code les --python /tmp/cace/bin/python \\
        --epochs 500 --seed 0                       # peer set-up: see peer_les.py

Data: ``../shared/data/lesfit_des370k_dimers_bec.xyz`` (121 neutral molecular dimers of
H, C, N, O, F, P, S, Cl with DFT energies, forces, dipoles and Born charges), split as in
``backbone_variants.py --dataset des370k_dimers`` and ``peer_mace.py`` (80/20, seed 0;
10 % of the training part for validation): 87 training, 10 validation, 24 test frames.
Both codes train on the **energies and forces** of the training frames only; the
dipoles and Born charges of the test frames are what they are scored on.

* fieldforce: ``family: latent`` with its defaults (energy 1, forces 100, batch 16,
  cosine over 10,000 steps, one interaction layer), ``--set`` model options (e.g. the
  compressed species channels of issue 13), ``--train-set`` training options. Its
  charge sign is settled by the model itself (``model.config["charge_sign"]``: these
  zero-field neutral frames leave the convention: charges anticorrelated with Pauling
  electronegativity over the training atoms).
* CACE-LES: ``peer_les.py``'s program (the authors' water fit: r 5.5 Å, l_max 3, nu_max
  3, charge head [24, 12] + linear path, Ewald weight 0.01, batch 2, force weight 1000,
  the restarted StepLR cycles and energy-weight stages over ``--epochs``, 500 the
  authors'), charges in e from its own Coulomb energy, per-frame mean charge removed,
  Born charges by autograd. Its sign is set here post hoc by fieldforce's convention
  (charges anticorrelated with electronegativity, over the test atoms: the peer predicts
  only those); the raw scores are kept too.

Scores on the test frames: energy (meV/atom) and force (eV/Å) RMSE; Born-charge RMSE over
all 9 components of all atoms (e) and relative to the DFT components' spread; dipole
RMSE (e·Å); the best scalar factor on the Born charges (post hoc, not a model); mean
charge and isotropic Born charge per species. Baselines on the same frames: all Born
charges zero; classical force-field charges from each molecule's SMILES (Gasteiger and
MMFF94, RDKit, run in its own environment with ``--classical-python``; the analogue of
TIP3P on the water set); and one charge per element fitted to the test frames' own DFT
Born charges (q_Z = the mean isotropic Z* of the element; Z*_i = q_Z I; dipoles of those
charges with each frame's mean charge removed), an oracle, not a model. Results:
``benchmarks/results/latent_born_dimers.json``, rows keyed ``code[@tag]@seedS`` and one
``baselines`` entry, written after every run (``--code baselines``: the baselines alone).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from fieldforce.data.atomic import write_json
from fieldforce.models.learned_charges import electronegativity_vote

sys.path.insert(0, str(Path(__file__).parent))
from _options import key_values, option_arguments  # noqa: E402
from backbone_variants import splits  # noqa: E402
from latent_water import charge_scores, frame_dipoles, predict, reference, rmse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASET = "des370k_dimers"


#: classical partial charges from the frames' mapped SMILES, run in an RDKit environment
#: (``--classical-python``): atom map number k is atom k - 1 of the frame
CLASSICAL = r"""
import json, sys
from rdkit import Chem
from rdkit.Chem import AllChem, rdPartialCharges
out = []
for smiles in json.load(sys.stdin):
    params = Chem.SmilesParserParams()
    params.removeHs = False
    mol = Chem.MolFromSmiles(smiles, params)
    order = [a.GetAtomMapNum() - 1 for a in mol.GetAtoms()]
    rdPartialCharges.ComputeGasteigerCharges(mol)
    gasteiger = [0.0] * len(order)
    for a, i in zip(mol.GetAtoms(), order):
        gasteiger[i] = a.GetDoubleProp("_GasteigerCharge")
    props = AllChem.MMFFGetMoleculeProperties(mol)
    mmff = None
    if props is not None:
        mmff = [0.0] * len(order)
        for k, i in enumerate(order):
            mmff[i] = props.GetMMFFPartialCharge(k)
    out.append({"gasteiger": gasteiger, "mmff94": mmff})
print(json.dumps(out))
"""


def classical_charges(frames, python: str | None, cache: Path) -> dict | None:
    """Gasteiger and MMFF94 partial charges of ``frames`` (cached in ``cache``), or None
    without an RDKit environment."""
    import subprocess

    smiles = [f.atoms.info["smiles"] for f in frames]
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored["smiles"] == smiles:
            return stored
    if python is None:
        return None
    done = subprocess.run([python, "-c", CLASSICAL], input=json.dumps(smiles), text=True,
                          capture_output=True, check=False)
    if done.returncode:
        raise SystemExit(f"RDKit charges failed:\n{done.stderr[-2000:]}")
    per_frame = json.loads(done.stdout)
    stored = {"smiles": smiles, "rdkit_python": python,
              "gasteiger": [c["gasteiger"] for c in per_frame],
              "mmff94": [c["mmff94"] for c in per_frame]}
    cache.write_text(json.dumps(stored) + "\n")
    return stored


def fixed_charge_scores(q: np.ndarray, ref: dict) -> dict:
    """Scores of fixed point charges q (per atom, e): Z*_i = q_i I, M = sum q r, each
    frame's mean charge removed (as for the models)."""
    counts = np.diff(ref["offsets"])
    q = q - np.repeat(np.add.reduceat(q, ref["offsets"][:-1]) / counts, counts)
    return charge_scores(q[:, None, None] * np.eye(3)[None], frame_dipoles(q, ref), q, ref, "")


def baselines(ref: dict, classical: dict | None = None) -> dict:
    """Zero Born charges, the per-element fixed charges fitted to the DFT Born charges, and
    with ``classical`` the Gasteiger and MMFF94 charges (frames without MMFF94 parameters
    are left out of that row and counted)."""
    born, numbers = ref["born_charges"], ref["numbers"]
    iso = np.trace(born, axis1=1, axis2=2) / 3
    fitted = {int(z): float(iso[numbers == z].mean()) for z in np.unique(numbers)}
    fixed = fixed_charge_scores(np.array([fitted[int(z)] for z in numbers]), ref)
    extra = {}
    if classical is not None:
        extra["gasteiger"] = fixed_charge_scores(np.concatenate(classical["gasteiger"]), ref)
        have = [i for i, c in enumerate(classical["mmff94"]) if c is not None]
        keep = np.concatenate([np.arange(a, b) for i, (a, b) in
                               enumerate(zip(ref["offsets"][:-1], ref["offsets"][1:],
                                             strict=True))
                               if i in have])
        sub = {**ref, "born_charges": born[keep], "numbers": numbers[keep],
               "positions": ref["positions"][keep], "dipole": ref["dipole"][have],
               "field": ref["field"][have],
               "offsets": np.cumsum([0] + [int(np.diff(ref["offsets"])[i]) for i in have])}
        extra["mmff94"] = {**fixed_charge_scores(
            np.concatenate([classical["mmff94"][i] for i in have]), sub),
            "frames": len(have), "frames_without_parameters": len(ref["dipole"]) - len(have)}
    return {"dft_born_std": float(born.std()), "dft_dipole_std": float(ref["dipole"].std()),
            "born_rmse_zero": rmse(0.0, born), "dipole_rmse_zero": rmse(0.0, ref["dipole"]),
            "fitted_fixed_charges": {chemical_symbols[z]: v for z, v in fitted.items()},
            "fitted_fixed": fixed,
            "dft_mean_born_iso": {chemical_symbols[int(z)]: float(iso[numbers == z].mean())
                                  for z in np.unique(numbers)}, **extra}


def scores(pred: dict, ref: dict) -> dict:
    """Energy, force and charge scores; for a peer also with the sign convention applied."""
    n_atoms = np.diff(ref["offsets"])
    row = {"energy_rmse_meV_per_atom": 1000 * rmse(pred["energy"], ref["energy"]),
           "forces_rmse": rmse(pred["forces"], ref["forces"])}
    row.update(charge_scores(pred["born_charges"], pred["dipole"], pred["charges"], ref, ""))
    # fieldforce's own convention (models/learned_charges.py), applied post hoc
    sign = -1.0 if electronegativity_vote(pred["charges"], ref["numbers"]) > 0 else 1.0
    row["sign_flipped_post_hoc"] = bool(sign < 0)
    row.update(charge_scores(sign * pred["born_charges"], sign * pred["dipole"],
                             sign * pred["charges"], ref, "sign_fixed_"))
    row["mean_abs_charge"] = float(np.abs(pred["charges"]).mean())
    row["n_test_atoms"] = int(n_atoms.sum())
    return row


def run_fieldforce(data, args, work: Path) -> tuple[dict, dict]:
    from fieldforce.training import Trainer, load_config

    train, valid, test = data
    config = load_config({
        "data": {"train": "unused.xyz"},
        "model": {"family": "latent", **key_values(args.set)},
        "training": {"seed": args.seed, **key_values(args.train_set)},
        "output": str(work)})
    start = time.perf_counter()
    trainer = Trainer(config, progress=False, data=(train, valid, []))
    result = trainer.fit()
    seconds = time.perf_counter() - start
    model = trainer.model
    pred = predict(model, test, born=True)
    steps = result["epochs"] * int(np.ceil(len(train) / config["training"]["batch_size"]))
    return ({"train_seconds": seconds, "epochs": result["epochs"], "steps": steps,
             "charge_sign": model.config.get("charge_sign"),
             "model": model.config, "training": config["training"]}, pred)


def run_les(data, args, work: Path) -> tuple[dict, dict]:
    from peer_cace import write_extxyz
    from peer_les import peer_output, train_peer

    paths = {name: work / f"{name}.xyz" for name in ("train", "valid", "test")}
    for name, frames in zip(("train", "valid", "test"), data, strict=True):
        write_extxyz(paths[name], frames)
    if not args.rescore:
        train_peer(args.python, paths, work, args.epochs, args.cutoff, args.seed,
                   args.threads, args.ewald_weight)
    meta, raw = peer_output(work)
    n_atoms = np.array([len(f.atoms) for f in data[2]])
    pred = {"energy": raw["energy"] / n_atoms, "forces": raw["forces"],
            "charges": raw["charges"], "dipole": raw["dipole"],
            "born_charges": raw["born_charges"]}
    return {**meta, "epochs_option": args.epochs, "cutoff": args.cutoff,
            "ewald_weight": args.ewald_weight, "dtype": "float32"}, pred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", choices=("fieldforce", "les", "baselines"), required=True,
                        help="baselines: only the baselines (no training)")
    parser.add_argument("--seed", type=int, default=0,
                        help="training seed (the split is always seed 0's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    option_arguments(parser, "fieldforce model options", "fieldforce training options")
    parser.add_argument("--tag", default=None, help="name of the variant in the results")
    parser.add_argument("--python", help="the peer environment's python (--code les)")
    parser.add_argument("--classical-python", default=None,
                        help="a python with RDKit: adds the Gasteiger and MMFF94 charges of "
                             "the test molecules as classical baselines (cached in --work)")
    parser.add_argument("--epochs", type=int, default=500,
                        help="CACE-LES total epochs (the authors' 500)")
    parser.add_argument("--cutoff", type=float, default=5.5, help="CACE-LES cutoff, Å")
    parser.add_argument("--ewald-weight", type=float, default=0.01)
    parser.add_argument("--rescore", action="store_true",
                        help="CACE-LES: score a finished run's predictions again")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "latent_born_dimers")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "latent_born_dimers.json")
    args = parser.parse_args()
    if args.code == "les" and not args.python:
        raise SystemExit("--code les needs --python (the CACE-LES environment)")
    import torch

    torch.set_num_threads(args.threads)
    data = splits(0, DATASET, args.data_dir, test_labels=True)
    ref = reference(data[2])
    base = baselines(ref, classical_charges(data[2], args.classical_python,
                                            args.work / "classical_charges.json"))
    key, row = None, None
    if args.code != "baselines":
        key = args.code + (f"@{args.tag}" if args.tag else "") + f"@seed{args.seed}"
        work = args.work / key
        work.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        run = run_fieldforce if args.code == "fieldforce" else run_les
        meta, pred = run(data, args, work)
        row = {"code": args.code, "tag": args.tag, "seed": args.seed,
               "threads": args.threads,
               "command": "python benchmarks/latent_born_dimers.py " + " ".join(sys.argv[1:]),
               "n_train": len(data[0]), "n_valid": len(data[1]), "n_test": len(data[2]),
               **meta, **scores(pred, ref), "wall_seconds": time.perf_counter() - start}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    with open(args.work / "results.lock", "w") as lock:  # seeds may run side by side
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(args.out.read_text()) if args.out.exists() else {}
        if key is not None:
            results[key] = row
        # the same test frames for every row: one set of baselines, the classical charges
        # kept once computed
        if "gasteiger" in base or "gasteiger" not in results.get("baselines", {}):
            results["baselines"] = base
        write_json(results, args.out)
    if row is not None:
        print(f"{key}: E {row['energy_rmse_meV_per_atom']:.1f} meV/atom, F "
              f"{row['forces_rmse']:.3f} eV/Å; Z* RMSE {row['born_rmse']:.3f} e (sign "
              f"convention applied: {row['sign_fixed_born_rmse']:.3f}), dipole "
              f"{row['sign_fixed_dipole_rmse']:.3f} e·Å, mean |q| "
              f"{row['mean_abs_charge']:.3f} e")
    print(f"baselines: zero Z* {base['born_rmse_zero']:.3f} e (dipole "
          f"{base['dipole_rmse_zero']:.3f} e·Å); per-element charges fitted to DFT "
          f"{base['fitted_fixed']['born_rmse']:.3f} e ({base['fitted_fixed']['dipole_rmse']:.3f}"
          " e·Å)")
    for name in ("gasteiger", "mmff94"):
        if name in base:
            print(f"{name} charges: Z* RMSE {base[name]['born_rmse']:.3f} e, dipole "
                  f"{base[name]['dipole_rmse']:.3f} e·Å")
    print(f"wrote {args.out}")

if __name__ == "__main__":
    main()
