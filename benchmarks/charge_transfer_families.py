"""Short-range, latent-charge and charge-equilibration models on the charge-transfer data.

    python benchmarks/charge_transfer_families.py --threads 1
    python benchmarks/charge_transfer_families.py --rescore     # score the trained models again
    python benchmarks/charge_transfer_families.py --data benchmarks/runs/charge_transfer/\
charge_transfer.xyz.gz.parts --max-steps 200      # a quick check on a partial labelling

Data (``--data``): the charge-transfer set of
:mod:`fieldforce.datasets.make_charge_transfer` (PBE/def2-SVPD, PySCF: polyyne C10H2 and
its protonated cation C10H3+, Na4Cl4 and its ions, Na_n clusters, Na8 + H2O; a third of
the frames in a uniform field); a labelled extxyz or the ``.parts`` folder of a labelling
in progress. Split per kind (``config_type``): a quarter held out for testing (seed 0),
10 % of the rest for validation.

Models (``--variants``), one backbone, seed and schedule, all trained on the same labels
(``--weights``, default energy 1, forces 100, dipole 10, polarizability 1: the dipoles give
the charged families their scale and sign; a term a family does not predict is left out
for it: the short-range model learns energies and forces, the latent model adds the
dipoles, QEq also the polarizabilities):

* ``short_range``: ``family: latent`` with ``long_range: false`` (no charges);
* ``latent``: latent Ewald charges (local charges, neutrality by a uniform shift);
* ``qeq``: charge equilibration, ``conduction: conductor`` (one chemical potential per
  structure, the net charge ``total_charge``).

Scored on the test set (each model as saved in ``--work``, default /tmp/ff_charge_transfer;
per kind as well) by ``fieldforce eval``'s scorer: energy, forces, dipole,
polarizability, Born charges and charges (meta-Löwdin) where the model predicts them;
a model without a charge output is "n/a", and the latent model's polarizability is zero
by construction (scored as a model predicting zero, so its error is the labels' RMS).

Two tests of non-local physics:

* **far-end charge of the chain**: the summed charge of the last C-C-H group (the end
  opposite the protonated one, 12 Å away), mean over all chain frames, neutral vs
  protonated, and the change of every atom's charge along the chain (plotted); the DFT
  difference is the charge pulled along the chain by the proton, which a local charge
  model sees only through how it spreads the net charge (the latent model: a uniform
  shift, 1/13 e per atom);
* **field response**: the induced dipole mu(E) - mu(0) along the field for Na8 (a small
  conductor) and C10H2 (along the chain) at their undisplaced geometries, fields 0-0.1
  V/Å, against PySCF at the dataset's level of theory (computed once and cached in
  ``benchmarks/results/charge_transfer_field_dft.json``; the training fields reach 0.05).

Writes benchmarks/results/charge_transfer_families.json after every variant, and
charge_transfer_families.png (far-end charges; induced dipoles vs field).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _options import key_values, option_arguments

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = {
    "short_range": {"family": "latent", "long_range": False},
    "latent": {"family": "latent"},
    "qeq": {"family": "qeq", "conduction": "conductor"},
}
FIELDS = (0.0, 0.02, 0.05, 0.1)  # V/Å
#: the field-response systems: name -> (builder, field direction)
RESPONSE_AXES = {"Na8": (1.0, 0.0, 0.0), "C10H2": (0.0, 0.0, 1.0)}
PROPERTIES = ("energy", "forces", "dipole", "polarizability", "born_charges", "charges")


def load(path: Path) -> list:
    """Frames of a labelled extxyz, or of every part of a labelling in progress."""
    from fieldforce.data.io import read_frames

    if path.is_dir():
        frames = [f for part in sorted(path.glob("*.xyz")) for f in read_frames(part)]
        if not frames:
            raise SystemExit(f"{path}: no labelled parts")
        return frames
    return read_frames(path)


def kind(frame) -> str:
    return str(frame.atoms.info.get("config_type", "?"))


def splits(frames, seed: int = 0):
    """Per kind: a quarter for testing, then a tenth of the rest for validation."""
    rng = np.random.default_rng(seed)
    train, valid, test = [], [], []
    for name in sorted({kind(f) for f in frames}):
        group = [f for f in frames if kind(f) == name]
        order = rng.permutation(len(group))
        n_test = max(1, round(len(group) / 4)) if len(group) > 1 else 0
        n_valid = max(1, round((len(group) - n_test) / 10)) if len(group) > 2 else 0
        test += [group[i] for i in order[:n_test]]
        valid += [group[i] for i in order[n_test:n_test + n_valid]]
        train += [group[i] for i in order[n_test + n_valid:]]
    return train, valid, test


def far_end(frame) -> list[int]:
    """The far C-C-H group of a chain: carbons 8, 9 and the last hydrogen (the protonated
    chain's extra H is at the other end)."""
    return [8, 9, len(frame.atoms) - 1]


def far_end_charges(frames, charges: list[np.ndarray] | None) -> dict:
    """Mean far-end charge of the neutral and protonated chains (``charges`` per frame;
    None: the labels), their difference, and ``profile``: the mean charge change on
    protonation of each carbon (from the protonated end) and of the far hydrogen, e."""
    out: dict = {}
    sites: dict[str, list[np.ndarray]] = {}
    for name in ("chain", "chain_protonated"):
        values, rows = [], []
        for i, f in enumerate(frames):
            if kind(f) != name:
                continue
            q = np.asarray(f.labels["charges"] if charges is None else charges[i])
            values.append(q[far_end(f)].sum())
            rows.append(np.append(q[:10], q[-1]))  # carbons 0-9, the far H
        out[name] = float(np.mean(values)) if values else None
        sites[name] = rows
    if None not in out.values():
        out["difference"] = out["chain_protonated"] - out["chain"]
        out["profile"] = (np.mean(sites["chain_protonated"], axis=0)
                          - np.mean(sites["chain"], axis=0)).tolist()
    return out


def model_charges(model, frames) -> list[np.ndarray]:
    import torch

    from fieldforce.data.batch import collate
    from fieldforce.models import evaluate

    out = []
    with torch.enable_grad():
        for frame in frames:
            res = evaluate(model, collate([frame]), forces=False)
            out.append(res["charges"].detach().numpy())
    return out


def response_geometries():
    from fieldforce.datasets.make_charge_transfer import polyyne, sodium_cluster

    return {"Na8": sodium_cluster(8), "C10H2": polyyne(False)}


def dft_response(cache: Path) -> dict:
    """DFT dipole along the field, e·Å, at FIELDS for each response system (cached)."""
    from fieldforce.data.atomic import write_json
    from fieldforce.datasets.make_charge_transfer import _backend

    done = json.loads(cache.read_text()) if cache.exists() else {}
    backend = None
    for name, atoms in response_geometries().items():
        axis = np.array(RESPONSE_AXES[name])
        have = done.setdefault(name, {})
        for field in FIELDS:
            key = f"{field:g}"
            if key in have:
                continue
            backend = backend or _backend()
            t0 = time.perf_counter()
            labels = backend.label(atoms, field * axis, ["energy", "dipole"])
            have[key] = float(np.asarray(labels["dipole"]) @ axis)
            print(f"DFT {name} at {field:g} V/Å: mu = {have[key]:.4f} e·Å "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
            write_json(done, cache)
    return done


def model_response(model, train_frames) -> dict:
    import torch

    from fieldforce.data.batch import collate
    from fieldforce.data.frame import Frame
    from fieldforce.models import evaluate

    out = {}
    if "dipole" not in {o.name for o in model.output_specs()}:
        return out
    trained = {int(z) for f in train_frames for z in f.atoms.numbers}
    for name, atoms in response_geometries().items():
        if not set(atoms.numbers) <= trained:  # a partial labelling without this system
            continue
        axis = np.array(RESPONSE_AXES[name])
        values = {}
        for field in FIELDS:
            frame = Frame(atoms.copy(), {"efield": field * axis, "total_charge": np.array(0.0)})
            with torch.enable_grad():
                res = evaluate(model, collate([frame]), forces=False)
            values[f"{field:g}"] = float(res["dipole"].detach().numpy()[0] @ axis)
        out[name] = values
    return out


def run_variant(name: str, data, args, weights: dict, options: dict,
                training: dict) -> dict:
    """Train variant ``name`` into ``args.work / name``; its cost."""
    from fieldforce.training import Trainer, load_config

    train, valid, test = data
    config = load_config({
        "data": {"train": "fieldforce:water", "valid_fraction": 0.1},
        "model": {**VARIANTS[name], **options},
        "training": {"seed": args.seed, "max_steps": args.max_steps, "patience": 10**6,
                     "loss_weights": weights, "max_minutes": args.max_minutes,
                     # a term the model does not predict (the short-range model's
                     # dipole) is left out with a warning
                     "missing_labels": "warn", **training},
        "output": str(args.work / name)})
    t0 = time.perf_counter()
    trainer = Trainer(config, progress=False, data=(train, valid, []))
    trainer.fit()
    return {"variant": name, "seconds": time.perf_counter() - t0, "epochs": trainer.epoch,
            "n_train": len(train), "n_valid": len(valid), "n_test": len(test)}


def score(name: str, data, work: Path) -> dict:
    """Scores of the model file ``work/name/model.pt`` (as trained, or kept from an
    earlier run: ``--rescore``)."""
    from fieldforce.models import load_model
    from fieldforce.training.evaluation import evaluate_frames

    train, valid, test = data
    model = load_model(work / name / "model.pt")
    table, _ = evaluate_frames(model, test)
    scores = {k: {kk: m[kk] for kk in ("rmse", "rrmse", "unit", "n")}
              for k, m in table.items() if "rmse" in m}
    by_kind = {}
    for group in sorted({kind(f) for f in test}):
        part, _ = evaluate_frames(model, [f for f in test if kind(f) == group])
        by_kind[group] = {k: part[k]["rmse"] for k in ("energy", "forces", "dipole",
                                                         "polarizability") if k in part}
    return {"model": model.config, "scores": scores, "by_kind": by_kind,
            "far_end": {} if not model.has_charges else far_end_charges(
                train + valid + test, model_charges(model, train + valid + test)),
            "field_response": model_response(model, train)}


def zero_scores(frames) -> dict:
    """RMSE of predicting zero for the response labels (what a model without the output,
    e.g. the latent model's polarizability, scores)."""
    out = {}
    for key in ("dipole", "polarizability", "born_charges", "charges"):
        values = [np.asarray(f.labels[key]).ravel() for f in frames if key in f.labels]
        if values:
            out[key] = {"rmse": float(np.sqrt(np.mean(np.concatenate(values) ** 2)))}
    return out


def table(rows: list[dict], reference: dict) -> str:
    cols = [("energy", 1000, "E meV/atom"), ("forces", 1, "F eV/Å"), ("dipole", 1, "mu e·Å"),
            ("polarizability", 1, "alpha e·Å²/V"), ("born_charges", 1, "Z* e"),
            ("charges", 1, "q e")]
    lines = ["| model | " + " | ".join(c[2] for c in cols)
             + " | far-end q neutral / protonated / diff, e |",
             "|---|" + "---|" * (len(cols) + 1)]
    for r in rows:
        cells = []
        for key, factor, _ in cols:
            m = r["scores"].get(key)
            cells.append("n/a" if m is None else f"{factor * m['rmse']:.3g}")
        fe = r["far_end"]
        far = ("n/a" if fe.get("chain") is None else
               f"{fe['chain']:+.3f} / {fe['chain_protonated']:+.3f} / "
               f"{fe.get('difference', float('nan')):+.3f}")
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + f" | {far} |")
    lines.append("| zero prediction | | | " + " | ".join(
        f"{reference['zero'][k]['rmse']:.3g}" if k in reference["zero"] else "n/a"
        for k, _, _ in cols[2:]) + " | |")
    fe = reference["far_end"]
    if fe.get("difference") is not None:
        lines.append("| DFT (meta-Löwdin) |" + " |" * len(cols)
                     + f" {fe['chain']:+.3f} / {fe['chain_protonated']:+.3f} / "
                       f"{fe['difference']:+.3f} |")
    kinds = sorted({k for r in rows for k in r.get("by_kind", {})})
    if kinds:
        lines += ["", "| energy meV/atom / forces eV/Å by kind | " + " | ".join(
            r["variant"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
        for k in kinds:
            cells = [f"{1000 * r['by_kind'][k]['energy']:.0f} / {r['by_kind'][k]['forces']:.3f}"
                     if k in r.get("by_kind", {}) else "n/a" for r in rows]
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "| induced dipole along E, e·Å | " + " | ".join(
        f"{s} at {f:g} V/Å" for s in RESPONSE_AXES for f in FIELDS[1:]) + " |",
        "|---|" + "---|" * (len(RESPONSE_AXES) * (len(FIELDS) - 1))]
    sources = [("DFT", reference["field_response"])] + [
        (r["variant"], r["field_response"]) for r in rows]
    for label, resp in sources:
        cells = []
        for s in RESPONSE_AXES:
            for f in FIELDS[1:]:
                v = resp.get(s)
                cells.append("n/a" if not v else f"{v[f'{f:g}'] - v['0']:.4f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], reference: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fieldforce.data.atomic import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for label, fe in [("DFT", reference["far_end"])] + [(r["variant"], r["far_end"])
                                                       for r in rows]:
        if fe.get("profile"):
            axes[0].plot(range(11), fe["profile"], "o-" if label == "DFT" else ".--",
                         label=label, lw=2 if label == "DFT" else 1)
    axes[0].set_xticks(range(11), [f"C{k + 1}" for k in range(10)] + ["H"])
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel("charge change on protonation (e)")
    axes[0].set_xlabel("atom, from the protonated end")
    axes[0].legend(fontsize=8)
    axes[0].set_title("C10H2 -> C10H3+: where the proton's charge goes")
    for ax, system in zip(axes[1:], RESPONSE_AXES, strict=True):
        for label, resp in [("DFT", reference["field_response"])] + [
                (r["variant"], r["field_response"]) for r in rows]:
            v = resp.get(system)
            if v:
                ax.plot(FIELDS, [v[f"{f:g}"] - v["0"] for f in FIELDS], "o-" if label == "DFT"
                        else ".--", label=label, lw=2 if label == "DFT" else 1)
        ax.axvspan(0, 0.05, color="0.92", zorder=-1, label="training fields")
        ax.set_xlabel("field (V/Å)")
        ax.set_ylabel("induced dipole along E (e·Å)")
        ax.set_title(system)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "src" / "fieldforce" / "datasets"
                        / "charge_transfer.xyz.gz")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--weights", nargs="+",
                        default=["energy=1", "forces=100", "dipole=10", "polarizability=1"],
                        metavar="TERM=WEIGHT")
    option_arguments(parser, "model options for every variant",
                     "training options for every variant, e.g. weight_decay=0.03")
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--rescore", action="store_true",
                        help="score the models already in --work (no training)")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ff_charge_transfer"))
    parser.add_argument("--out", type=Path, default=RESULTS / "charge_transfer_families.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    frames = load(args.data)
    data = splits(frames)
    counts: dict[str, int] = {}
    for f in frames:
        counts[kind(f)] = counts.get(kind(f), 0) + 1
    print(f"{len(frames)} frames {counts}; train/valid/test "
          f"{len(data[0])}/{len(data[1])}/{len(data[2])}", flush=True)
    reference = {"far_end": far_end_charges(frames, None), "zero": zero_scores(data[2]),
                 "field_response": dft_response(RESULTS / "charge_transfer_field_dft.json")}
    weights = {k: float(v) for k, v in key_values(args.weights).items()}
    from fieldforce.data.atomic import write_json

    previous = {}
    if args.rescore and args.out.exists():
        previous = {r["variant"]: r for r in json.loads(args.out.read_text())["rows"]}
    rows = []
    for name in args.variants:
        if args.rescore:
            cost = {k: v for k, v in previous.get(name, {}).items()
                    if k in ("seconds", "epochs", "n_train", "n_valid", "n_test")}
        else:
            cost = run_variant(name, data, args, weights, key_values(args.set),
                               key_values(args.train_set))
        rows.append({"variant": name, **cost, **score(name, data, args.work)})
        r = rows[-1]
        print(f"{name}: {r.get('seconds', float('nan')):.0f} s, " + ", ".join(
            f"{k} {m['rmse']:.4g}" for k, m in r["scores"].items()), flush=True)
        write_json({"data": str(args.data), "counts": counts, "weights": weights,
                    "max_steps": args.max_steps, "seed": args.seed,
                    "reference": reference, "rows": rows}, args.out)
    print(table(rows, reference))
    plot(rows, reference, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
