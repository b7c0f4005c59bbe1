"""Training wall time to convergence, fieldforce against MACE and CACE, one after another
on the same cores (issue 13).

    python benchmarks/training_time.py --python /tmp/peers/bin/python \\
        --cace-python /tmp/cace/bin/python --threads 2
    python benchmarks/training_time.py --python /tmp/peers/bin/python \\
        --contenders fieldforce_option mace_medium          # a subset
    python benchmarks/training_time.py --table              # print the stored results

Data: the shipped water clusters' zero-field frames with ``backbone_variants.py``'s split
(382 training, 42 validation, 106 test frames). Each contender trains from scratch with
``--threads`` threads while nothing else runs (run it on a quiet machine; the contenders
run one after another, so their times are a ratio measured in one run):

- ``fieldforce_defaults``: the package's backbone defaults (one layer, cutoff 4 Å, the global
  feature spread, weight decay 0.03, force weight 100, cosine over 10,000 steps);
- ``fieldforce_option``: the best one-model option on this set (radial scaling r0 3 Å,
  m 6, cutoff 5 Å, force weight 1000, 20,000 steps);
- ``mace_small`` / ``mace_medium``: ``peer_mace.py``'s models (200 epochs, its own
  schedule), in the peer's interpreter (``--python``);
- ``cace``: ``peer_cace.py``'s model (CACE's water example, 300 epochs), in its own
  interpreter (``--cace-python``).

Reported per contender: the whole run's wall time (data preparation included), the time
at which the validation force RMSE first came within ``--within`` (default 5 %) of the
run's best, the test errors, and the kept model's validation force error (the
validation frames choose the kept weights of every code here, so they are not a blind
test; they are shown because on this split they rank the codes differently). Results:
``benchmarks/results/training_time.json`` (with each run's validation curve) and
``training_time.png`` (validation force RMSE against wall time).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(Path(__file__).parent))

#: fieldforce contenders: (backbone_variants variant, model options, training options)
FIELDFORCE = {
    "fieldforce_defaults": ("new_wd0.1", {"feature_scaling": "global"},
                            {"weight_decay": 0.03}),
    "fieldforce_option": ("wd_scaling3_6_cutoff5", {"feature_scaling": "global"},
                          {"weight_decay": 0.03, "max_steps": 20000,
                           "loss_weights": {"energy": 1.0, "forces": 1000.0}}),
}
MACE = {"mace_small": "small", "mace_medium": "medium"}
PEERS = [*MACE, "cace"]
#: a MACE log line: its time stamp, the epoch and the validation force RMSE (meV/Å)
MACE_EPOCH = re.compile(r"^(\S+ \S+) INFO: Epoch (\d+):.*RMSE_F=\s*([\d.]+) meV / A")
#: a CACE log line: its time stamp and the validation force RMSE (eV/Å)
CACE_EPOCH = re.compile(r"^(\S+ \S+) INFO: val_f_rmse: ([\d.]+)")


def log_curve(log: Path, pattern: re.Pattern, scale: float) -> list[tuple[float, float]]:
    """(seconds since the log's first time-stamped line, validation force RMSE in eV/Å)
    of every line ``pattern`` matches (its first group the time stamp, its last the
    RMSE in units of ``scale`` eV/Å)."""
    start, curve = None, []
    for line in log.read_text().splitlines():
        try:
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
        except ValueError:
            continue
        start = start or stamp
        match = pattern.match(line)
        if match:
            curve.append(((stamp - start).total_seconds(), scale * float(match.groups()[-1])))
    return curve


def converged_at(curve: list[tuple[float, float]], within: float) -> float:
    """Seconds at which the validation force RMSE first came within ``within`` (a
    fraction) of the curve's best; ``curve``: (seconds, RMSE) pairs in time order."""
    best = min(r for _, r in curve)
    return next(s for s, r in curve if r <= (1 + within) * best)


def run_fieldforce(name: str, threads: int, work: Path) -> dict:
    """Train one fieldforce contender in this process; its curve from the history."""
    import torch

    from backbone_variants import BASE_MODEL, BASE_TRAINING, VARIANTS, merged, splits
    from fieldforce.training import Trainer, evaluate_frames, load_config

    variant, model_change, training_change = FIELDFORCE[name]
    _, model_base, training_base = VARIANTS[variant]
    torch.set_num_threads(threads)
    shutil.rmtree(work / name, ignore_errors=True)  # from scratch, never resumed
    start = time.perf_counter()
    train, valid, test = splits(0)
    config = load_config({
        "data": {"train": "unused.xyz"}, "output": str(work / name),
        "model": merged(merged(BASE_MODEL, model_base), model_change),
        "training": {**merged(merged(BASE_TRAINING, training_base), training_change),
                     "seed": 0}})  # checkpoints every 5 epochs, as a user's run
    trainer = Trainer(config, progress=False, data=(train, valid, []))
    before_fit = time.perf_counter() - start  # descriptors and statistics
    result = trainer.fit()
    seconds = time.perf_counter() - start
    table, _ = evaluate_frames(trainer.model, test)
    curve = [(before_fit + h["seconds"], h["valid_rmse_forces"]) for h in trainer.history]
    return {"train_seconds": seconds, "epochs": result["epochs"], "steps": result["steps"],
            "forces_eV_per_A": table["forces"]["rmse"],
            "energy_meV_per_atom": 1000 * table["energy"]["rmse"], "curve": curve}


def mace_log(work: Path, size: str) -> Path:
    """MACE's own log of the run of ``size`` under ``work``."""
    return work / "peer_mace" / f"water_{size}" / "logs" / f"water_{size}_run-0.log"


def run_mace(name: str, threads: int, work: Path, python: str, epochs: int) -> dict:
    """Train one MACE contender through ``peer_mace.py``; its curve from MACE's log."""
    size, out = MACE[name], work / f"{name}.json"
    folder = work / "peer_mace"
    shutil.rmtree(folder / f"water_{size}", ignore_errors=True)  # from scratch
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peer_mace.py"),
                    "--python", python, "--size", size, "--threads", str(threads),
                    "--epochs", str(epochs), "--work", str(folder), "--out", str(out)],
                   check=True)
    row = json.loads(out.read_text())[size]
    return {"train_seconds": row["train_seconds"], "epochs": row["epochs"],
            "forces_eV_per_A": row["forces_eV_per_A"],
            "energy_meV_per_atom": row["energy_meV_per_atom"],
            "curve": log_curve(mace_log(work, size), MACE_EPOCH, 1e-3)}


def run_cace(threads: int, work: Path, python: str, epochs: int) -> dict:
    """Train CACE through ``peer_cace.py`` (its water-example model, cutoff 5.5 Å); its
    curve from CACE's own log."""
    out, folder = work / "cace.json", work / "peer_cace"
    shutil.rmtree(folder / "water_cutoff5.5", ignore_errors=True)  # from scratch
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peer_cace.py"),
                    "--python", python, "--threads", str(threads), "--epochs", str(epochs),
                    "--work", str(folder), "--out", str(out)], check=True)
    row = json.loads(out.read_text())["cutoff5.5"]
    return {"train_seconds": row["wall_seconds"], "epochs": row["epochs"],
            "forces_eV_per_A": row["forces_eV_per_A"],
            "energy_meV_per_atom": row["energy_meV_per_atom"],
            "curve": log_curve(folder / "water_cutoff5.5" / "cace.log", CACE_EPOCH, 1.0)}


def final_valid(name: str, work: Path, curve: list[tuple[float, float]]) -> float:
    """The saved model's validation force RMSE (eV/Å), from the run's own files:
    fieldforce's metrics.json, MACE's closing error table, CACE's last validation (its
    moving average, the model it keeps)."""
    if name in FIELDFORCE:
        return json.loads((work / name / "metrics.json").read_text())["valid"]["forces"]["rmse"]
    if name in MACE:
        rows = [line for line in mace_log(work, MACE[name]).read_text().splitlines()
                if line.startswith("| valid_Default |")]
        return float(rows[-1].split("|")[3]) / 1000
    return curve[-1][1]


def held_out(row: dict, atoms: tuple[int, int]) -> float:
    """Force RMSE over the validation and test frames together (eV/Å), from the two
    RMSEs weighted by their ``atoms`` (validation, test)."""
    a, b = atoms
    return ((a * row["valid_forces_eV_per_A"] ** 2 + b * row["forces_eV_per_A"] ** 2)
            / (a + b)) ** 0.5


def table(results: dict) -> None:
    from backbone_variants import splits

    _, valid_frames, test_frames = splits(0)
    atoms = (sum(len(f.atoms) for f in valid_frames), sum(len(f.atoms) for f in test_frames))
    within = 100 * next(iter(results.values()), {}).get("within", 0.05)
    print(f"| contender | threads | whole run s | within {within:.0f} % of its best validation "
          "forces, s | test forces eV/Å | test energies meV/atom | validation forces (kept "
          "model) | validation and test forces |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in results.items():
        valid = row.get("valid_forces_eV_per_A")
        both = "" if valid is None else f"{held_out(row, atoms):.4f}"
        print(f"| {name} | {row['threads']} | {row['train_seconds']:.0f} | "
              f"{row['converged_seconds']:.0f} | {row['forces_eV_per_A']:.4f} | "
              f"{row['energy_meV_per_atom']:.3f} | "
              f"{'' if valid is None else f'{valid:.4f}'} | {both} |")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from fieldforce.data.atomic import save_figure

    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.add_subplot()
    for name, row in reversed(results.items()):  # the first contenders drawn on top
        seconds, rmse = zip(*row["curve"], strict=True)
        label = f"{name} (test {row['forces_eV_per_A']:.4f})"
        line, = ax.semilogy(seconds, rmse, lw=1.2, label=label)
        ax.axvline(row["converged_seconds"], color=line.get_color(), ls=":", lw=0.8)
    ax.set_xlabel(f"wall time, s ({next(iter(results.values()))['threads']} threads, "
                  "one contender at a time)")
    ax.set_ylabel("validation force RMSE, eV/Å")
    within = 100 * next(iter(results.values()))["within"]
    ax.set_title(f"water clusters, 382 training frames (dotted: within {within:.0f} % of best)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], fontsize=8)  # in the table's order
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", help="the MACE environment's python")
    parser.add_argument("--cace-python", help="the CACE environment's python")
    parser.add_argument("--contenders", nargs="+", choices=[*FIELDFORCE, *PEERS],
                        default=[*FIELDFORCE, *PEERS])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--within", type=float, default=0.05)
    parser.add_argument("--mace-epochs", type=int, default=200,
                        help="MACE's epochs (peer_mace.py's default, the peers' rows)")
    parser.add_argument("--cace-epochs", type=int, default=300,
                        help="CACE's epochs (peer_cace.py's default, the peers' rows)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "training_time")
    parser.add_argument("--table", action="store_true",
                        help="print the stored results (and redraw the plot)")
    parser.add_argument("--rescore", action="store_true",
                        help="add the kept models' validation errors to the stored rows "
                             "from the runs' files in --work, then print the table")
    args = parser.parse_args()
    from fieldforce.data.atomic import write_json

    out = RESULTS / "training_time.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    if args.rescore:
        for name, row in results.items():
            row["valid_forces_eV_per_A"] = final_valid(name, args.work, row["curve"])
        write_json(results, out)
    elif not args.table:
        if any(c in MACE for c in args.contenders) and not args.python:
            parser.error("the MACE contenders need --python (the peer environment)")
        if "cace" in args.contenders and not args.cace_python:
            parser.error("the cace contender needs --cace-python (its environment)")
        args.work.mkdir(parents=True, exist_ok=True)
        for name in args.contenders:
            print(f"training {name} on {args.threads} threads ...", flush=True)
            if name in FIELDFORCE:
                row = run_fieldforce(name, args.threads, args.work)
            elif name in MACE:
                row = run_mace(name, args.threads, args.work, args.python, args.mace_epochs)
            else:
                row = run_cace(args.threads, args.work, args.cace_python, args.cace_epochs)
            row.update(threads=args.threads, within=args.within,
                       converged_seconds=converged_at(row["curve"], args.within),
                       best_valid_forces=min(r for _, r in row["curve"]),
                       measured=datetime.date.today().isoformat(),
                       valid_forces_eV_per_A=final_valid(name, args.work, row["curve"]))
            results = json.loads(out.read_text()) if out.exists() else {}
            results[name] = row
            write_json(results, out)
            print(f"{name}: {row['train_seconds']:.0f} s, within {100 * args.within:.0f} % "
                  f"at {row['converged_seconds']:.0f} s, test forces "
                  f"{row['forces_eV_per_A']:.4f} eV/Å", flush=True)
    if results:
        plot(results, RESULTS / "training_time.png")
    table(results)


if __name__ == "__main__":
    main()
