"""Predictions against labels: RMSE, MAE and relative RMSE, from the model's declarations.

What is scored comes from the model (:meth:`~fieldforce.models.FieldModel.output_specs`):
every output of role ``property`` that is a canonical label is compared with the frames'
labels where they have them (relative RMSE = RMSE / standard deviation of the reference
labels over the set, all components pooled; energies per atom); every ``property`` output
without a canonical label (an uncertainty, say) is summarised instead (mean, RMS and
largest value over the set), since there is nothing to compare it with. The model is
evaluated at each frame's own uniform field. Outputs computed only on request (Born
charges) are computed per batch, and only when the frames have their labels.

A property whose model also predicts ``<name>_uncertainty`` (a standard deviation, e.g. the
kernel heads) gets a ``calibration`` entry: the fractions of the errors (per component)
within one and two predicted standard deviations (0.683 and 0.954 for calibrated
Gaussian errors) and the Spearman rank correlation of the predicted sigma with the
absolute error per item (structure or atom; vector norms for vector properties). For a
slab, the uncertainty goes through the same projection as the values (its component along
the normal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fieldforce.data.batch import collate
from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS
from fieldforce.models.derivatives import evaluate
from fieldforce.training.losses import labelled_pairs


def predict(model, frames: Sequence[Frame], batch_size: int = 64,
            properties: Sequence[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """{property: {"pred": array, "ref": array}} for the labels the frames have.

    Outputs without a canonical label come back as {"pred": array} (no "ref").
    ``properties``: restrict to these output names (default: every ``property`` output).
    """
    specs = [o for o in model.output_specs() if o.role == "property"
             and (properties is None or o.name in properties)]
    names = [o.name for o in specs]
    on_request = {o.name for o in specs if o.on_request}
    pairs: dict[str, dict[str, list]] = {}
    check_species = getattr(model, "check_species", None)
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        if check_species is not None:
            for frame in chunk:  # an element the model never saw: name the file and frame
                check_species(frame.atoms.numbers, where=frame.where())
        batch = collate(chunk)
        born = ("born_charges" in on_request and "born_charges" in batch.labels
                and model.has_charges)
        # the family's own on-request outputs (uncertainties: reported and calibrated)
        requests = model.requestable()
        out = evaluate(model, batch, forces="forces" in names, born_charges=born,
                       requests=requests or None)
        for spec in specs:
            if spec.label is not None:
                pair = labelled_pairs(batch, out, spec.name)
                if pair is None:
                    continue
                entry = pairs.setdefault(spec.name, {"pred": [], "ref": []})
                entry["pred"].append(pair[0].detach().numpy())
                entry["ref"].append(pair[1].detach().numpy())
                sigma = out.get(f"{spec.name}_uncertainty")
                if sigma is not None:  # the same selection and projection as the values
                    same = labelled_pairs(batch, {spec.name: sigma}, spec.name)
                    entry.setdefault("sigma", []).append(same[0].detach().numpy())
            elif spec.name in out and not spec.periodic_only and (
                    not spec.on_request or spec.name in requests):
                value = out[spec.name].detach()
                pairs.setdefault(spec.name, {"pred": []})["pred"].append(value.numpy())
    return {k: {kk: np.concatenate(vv) for kk, vv in v.items()} for k, v in pairs.items()}


def metrics(pairs: dict[str, dict[str, np.ndarray]], units: dict[str, str] | None = None
            ) -> dict[str, dict]:
    """Per labelled property: rmse, mae, rrmse, unit (internal units), n (labelled items);
    per unlabelled output: mean, rms, max, unit, n. ``units``: of the unlabelled outputs."""
    out = {}
    for name, pr in pairs.items():
        if "ref" not in pr:
            values = pr["pred"].ravel()
            if len(values):
                out[name] = {"mean": float(values.mean()),
                             "rms": float(np.sqrt(np.mean(values**2))),
                             "max": float(np.abs(values).max()),
                             "unit": (units or {}).get(name, ""), "n": int(len(pr["pred"]))}
            continue
        diff = (pr["pred"] - pr["ref"]).ravel()
        if len(diff) == 0:
            continue
        spread = float(pr["ref"].std())
        rmse = float(np.sqrt(np.mean(diff**2)))
        # one labelled value (or all equal) has no spread: no relative error (JSON null)
        out[name] = {"rmse": rmse, "mae": float(np.mean(np.abs(diff))),
                     "rrmse": rmse / spread if spread > 0 else None,
                     "unit": LABELS[name].score_unit, "n": int(len(pr["ref"]))}
        if "sigma" in pr and len(pr["sigma"]) == len(pr["ref"]):
            out[name]["calibration"] = calibration(pr["pred"], pr["ref"], pr["sigma"])
    return out


def calibration(pred: np.ndarray, ref: np.ndarray, sigma: np.ndarray) -> dict[str, float]:
    """within_1sigma, within_2sigma (fractions of component errors inside k predicted
    standard deviations) and spearman (rank correlation of sigma with |error| per item;
    null with fewer than 3 items or no spread)."""
    from scipy.stats import spearmanr

    error = np.abs(pred - ref).reshape(len(ref), -1)
    sigma = np.abs(np.broadcast_to(sigma, pred.shape)).reshape(len(ref), -1)
    safe = np.where(sigma > 0, sigma, np.finfo(float).tiny)
    ratio = (error / safe).ravel()
    item_error = np.linalg.norm(error, axis=1)
    item_sigma = np.linalg.norm(sigma, axis=1)
    rho = None
    if len(ref) >= 3 and np.ptp(item_error) > 0 and np.ptp(item_sigma) > 0:
        rho = float(spearmanr(item_sigma, item_error).statistic)
    return {"within_1sigma": float(np.mean(ratio <= 1.0)),
            "within_2sigma": float(np.mean(ratio <= 2.0)), "spearman": rho}


def format_metrics(table: dict[str, dict], title: str = "") -> str:
    """Markdown tables: the errors of labelled properties, then unlabelled outputs."""
    lines = [title] if title else []
    scored = {k: m for k, m in table.items() if "rmse" in m}
    summarised = {k: m for k, m in table.items() if "rmse" not in m}
    if scored or not summarised:
        lines += ["| property | RMSE | MAE | relative RMSE | unit | n |",
                  "|---|---|---|---|---|---|"]
        for name, m in scored.items():
            relative = "n/a (no spread)" if m["rrmse"] is None else f"{100 * m['rrmse']:.2f} %"
            lines.append(f"| {name} | {m['rmse']:.4g} | {m['mae']:.4g} | {relative} | "
                         f"{m['unit']} | {m['n']} |")
        calibrated = {k: m["calibration"] for k, m in scored.items() if "calibration" in m}
        if calibrated:
            lines += ["", "| calibration | within 1 sigma | within 2 sigma | Spearman |",
                      "|---|---|---|---|",
                      *(f"| {k} | {c['within_1sigma']:.3f} (0.683) | "
                        f"{c['within_2sigma']:.3f} (0.954) | "
                        + ("n/a" if c["spearman"] is None else f"{c['spearman']:.2f}") + " |"
                        for k, c in calibrated.items())]
    if summarised:
        lines += ["", "| output (no labels) | mean | RMS | max | unit | n |",
                  "|---|---|---|---|---|---|"]
        for name, m in summarised.items():
            lines.append(f"| {name} | {m['mean']:.4g} | {m['rms']:.4g} | {m['max']:.4g} "
                         f"| {m['unit']} | {m['n']} |")
    return "\n".join(lines)


def evaluate_frames(model, frames: Sequence[Frame]) -> tuple[dict, dict]:
    """(metrics table, pairs) of ``model`` on ``frames``; ``pairs`` holds the labelled ones
    (prediction and reference arrays, for parity plots)."""
    with torch.enable_grad():
        pairs = predict(model, frames)
    units = {o.name: o.unit for o in model.output_specs()}
    table = metrics(pairs, units)
    return table, {k: v for k, v in pairs.items() if "ref" in v}


def score_held_out(model, valid: Sequence[Frame], test: Sequence[Frame], output) -> dict:
    """A finished run's scores: ``{"valid": table, "test": table (with test frames),
    "plots": [paths]}``, the tables of :func:`evaluate_frames` and the parity and
    calibration plots of each set written to the directory ``output``."""
    from fieldforce.training.plots import calibration_plots, parity_plots

    scores: dict = {"plots": []}
    for name, frames in (("valid", valid), ("test", test)):
        if name == "test" and not frames:
            continue
        table, pairs = evaluate_frames(model, frames)
        scores[name] = table
        scores["plots"] += parity_plots(pairs, output, table, prefix=f"parity_{name}")
        scores["plots"] += calibration_plots(pairs, output, prefix=f"calibration_{name}")
    return scores


__all__ = ["calibration", "evaluate_frames", "format_metrics", "metrics", "predict",
           "score_held_out"]
