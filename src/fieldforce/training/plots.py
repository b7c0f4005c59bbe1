"""Plots of a training run: parity plots per property, calibration of predicted
uncertainties, and the learning curve (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fieldforce.data.atomic import save_figure
from fieldforce.data.labels import LABELS


def parity_plots(pairs: dict[str, dict[str, np.ndarray]], directory: str | Path,
                 table: dict | None = None, prefix: str = "parity") -> list[Path]:
    """One PNG per property: predicted against reference, all components, with the RMSE
    and relative RMSE of ``table`` (:func:`fieldforce.training.evaluation.metrics`)."""
    from matplotlib.figure import Figure

    table = table or {}
    written = []
    for name, pr in pairs.items():
        ref, pred = pr["ref"].ravel(), pr["pred"].ravel()
        fig = Figure(figsize=(4.2, 4.0))
        ax = fig.add_subplot()
        ax.scatter(ref, pred, s=6, alpha=0.6)
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        unit = LABELS[name].score_unit
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        m = table.get(name)
        if m:
            spread = "" if m.get("rrmse") is None else f", {100 * m['rrmse']:.1f} % of spread"
            ax.set_title(f"{name}: RMSE {m['rmse']:.3g} {unit}{spread}", fontsize=8)
        fig.tight_layout()
        path = Path(directory) / f"{prefix}_{name}.png"
        save_figure(fig, path)
        written.append(path)
    return written


def calibration_plots(pairs: dict[str, dict[str, np.ndarray]], directory: str | Path,
                      prefix: str = "calibration") -> list[Path]:
    """One PNG per property with a predicted uncertainty: the fraction of component
    errors within k predicted standard deviations against k, next to the Gaussian
    expectation erf(k / sqrt 2) (below it: overconfident), and |error| against sigma."""
    from math import erf, sqrt

    from matplotlib.figure import Figure

    written = []
    for name, pr in pairs.items():
        if "sigma" not in pr:
            continue
        error = np.abs(pr["pred"] - pr["ref"]).ravel()
        sigma = np.abs(np.broadcast_to(pr["sigma"], pr["pred"].shape)).ravel()
        ratio = error / np.where(sigma > 0, sigma, np.finfo(float).tiny)
        k = np.linspace(0, 4, 81)
        fig = Figure(figsize=(8.0, 3.6))
        left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        left.plot(k, [np.mean(ratio <= x) for x in k], label="model")
        left.plot(k, [erf(x / sqrt(2)) for x in k], "k--", lw=0.8, label="Gaussian")
        left.set_xlabel("k (predicted standard deviations)")
        left.set_ylabel("fraction of errors within k sigma")
        left.legend(fontsize=8)
        unit = LABELS[name].score_unit
        right.loglog(np.maximum(sigma, 1e-12), np.maximum(error, 1e-12), ".", ms=2, alpha=0.5)
        lo = float(max(min(sigma.min(), error.min()), 1e-12))
        hi = float(max(sigma.max(), error.max()))
        right.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        right.set_xlabel(f"predicted sigma ({unit})")
        right.set_ylabel(f"|error| ({unit})")
        fig.suptitle(name, fontsize=9)
        fig.tight_layout()
        path = Path(directory) / f"{prefix}_{name}.png"
        save_figure(fig, path)
        written.append(path)
    return written


def learning_curve(history: list[dict], path: Path) -> Path:
    """Training and validation loss per epoch (log scale), with the learning rate."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    epochs = [h["epoch"] for h in history]
    ax.semilogy(epochs, [h["train_loss"] for h in history], label="train loss")
    ax.semilogy(epochs, [h["valid_loss"] for h in history], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("weighted loss (dimensionless)")
    twin = ax.twinx()
    twin.semilogy(epochs, [h["lr"] for h in history], "k:", lw=0.8, label="learning rate")
    twin.set_ylabel("learning rate")
    ax.legend(loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)
    return path


__all__ = ["learning_curve", "parity_plots"]
