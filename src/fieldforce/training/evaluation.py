"""Predictions against labels: RMSE, MAE, relative RMSE and parity plots.

relative RMSE (``rrmse``) = RMSE / standard deviation of the reference labels over
the set, all components pooled. Energies are compared per atom. The model is
evaluated at each frame's own uniform field. Every property the model predicts and
the frames have labels for is scored: energy, forces, dipole, polarizability,
charges, polarization (default branch) and Born charges (models with charges;
computed per batch with the acoustic sum rule, and only when there are labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fieldforce.data.atomic import atomic_path
from fieldforce.data.batch import collate
from fieldforce.data.frame import Frame
from fieldforce.models.derivatives import evaluate

UNITS = {"energy": "eV/atom", "forces": "eV/angstrom", "dipole": "e*angstrom",
         "polarizability": "e*angstrom^2/V", "born_charges": "e", "charges": "e",
         "polarization": "e/angstrom^2"}
PROPERTIES = ("energy", "forces", "dipole", "polarizability", "charges", "born_charges",
              "polarization")


def predict(model, frames: Sequence[Frame], batch_size: int = 64,
            properties: Sequence[str] = PROPERTIES) -> dict[str, dict[str, np.ndarray]]:
    """{property: {"pred": array, "ref": array}} for the labels the frames have."""
    pairs: dict[str, dict[str, list]] = {}
    need_forces = "forces" in properties
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        batch = collate(chunk)
        born = ("born_charges" in properties and "born_charges" in batch.labels
                and getattr(model, "predicts_charges", False))
        out = evaluate(model, batch, forces=need_forces, born_charges=born)
        n_atoms = batch.n_atoms_per_structure.to(batch.positions.dtype)
        for name in properties:
            if name not in batch.labels or name not in out:
                continue
            ref, pred = batch.labels[name], out[name].detach()
            if name == "energy":
                ref, pred = ref / n_atoms, pred / n_atoms
            mask = batch.label_mask[name]
            if ref.shape[0] != batch.n_structures:  # per-atom label
                mask = mask[batch.structure_index]
            entry = pairs.setdefault(name, {"pred": [], "ref": []})
            entry["pred"].append(pred[mask].numpy())
            entry["ref"].append(ref[mask].numpy())
    return {k: {kk: np.concatenate(vv) for kk, vv in v.items()} for k, v in pairs.items()}


def metrics(pairs: dict[str, dict[str, np.ndarray]]) -> dict[str, dict]:
    """Per property: rmse, mae, rrmse, unit (internal units) and n (labelled items)."""
    out = {}
    for name, pr in pairs.items():
        diff = (pr["pred"] - pr["ref"]).ravel()
        if len(diff) == 0:
            continue
        spread = float(pr["ref"].std())
        rmse = float(np.sqrt(np.mean(diff**2)))
        out[name] = {"rmse": rmse, "mae": float(np.mean(np.abs(diff))),
                     "rrmse": rmse / spread if spread > 0 else float("nan"),
                     "unit": UNITS.get(name, ""), "n": int(len(pr["ref"]))}
    return out


def format_metrics(table: dict[str, dict], title: str = "") -> str:
    lines = [title] if title else []
    lines += ["| property | RMSE | MAE | relative RMSE | unit | n |", "|---|---|---|---|---|---|"]
    for name, m in table.items():
        lines.append(f"| {name} | {m['rmse']:.4g} | {m['mae']:.4g} | {100 * m['rrmse']:.2f} % "
                     f"| {m['unit']} | {m['n']} |")
    return "\n".join(lines)


def save_figure(fig, path: Path) -> None:
    """A matplotlib figure as PNG, atomically."""
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=120)


def parity_plots(pairs: dict[str, dict[str, np.ndarray]], directory: str | Path,
                 table: dict | None = None, prefix: str = "parity") -> list[Path]:
    """One PNG per property: predicted against reference, all components."""
    from matplotlib.figure import Figure

    table = table or metrics(pairs)
    written = []
    for name, pr in pairs.items():
        ref, pred = pr["ref"].ravel(), pr["pred"].ravel()
        fig = Figure(figsize=(4.2, 4.0))
        ax = fig.add_subplot()
        ax.scatter(ref, pred, s=6, alpha=0.6)
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        unit = UNITS.get(name, "")
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        m = table.get(name)
        if m:
            ax.set_title(f"{name}: RMSE {m['rmse']:.3g} {unit}, {100 * m['rrmse']:.1f} % of spread",
                         fontsize=8)
        fig.tight_layout()
        path = Path(directory) / f"{prefix}_{name}.png"
        save_figure(fig, path)
        written.append(path)
    return written


def evaluate_frames(model, frames: Sequence[Frame]) -> tuple[dict, dict]:
    """(metrics table, prediction pairs) of ``model`` on ``frames``."""
    with torch.enable_grad():
        pairs = predict(model, frames)
    return metrics(pairs), pairs
