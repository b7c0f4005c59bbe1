"""What a dataset holds: a summary for people (``fieldforce data info``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from fieldforce.data.frame import Frame
from fieldforce.data.labels import LABELS
from fieldforce.units import INTERNAL_UNITS


def summarize(frames: Sequence[Frame], source: str | None = None) -> dict:
    """Frames, sizes, elements, periodicity, labels present with ranges, tags.

    Returns a JSON-serialisable dict; label statistics are over all components
    in internal units, plus the norm for vectors.
    """
    sizes = [len(f) for f in frames]
    elements: Counter = Counter()
    for f in frames:
        elements.update(f.atoms.get_chemical_symbols())
    labels = {}
    for name, spec in LABELS.items():
        values = [np.asarray(f.labels[name]) for f in frames if name in f.labels]
        if not values:
            continue
        flat = np.concatenate([v.ravel() for v in values])
        entry = {
            "frames": len(values),
            "unit": INTERNAL_UNITS[spec.dimension],
            "min": float(flat.min()),
            "max": float(flat.max()),
            "mean": float(flat.mean()),
            "std": float(flat.std()),
        }
        if spec.shape == (3,) and not spec.per_atom:
            norms = [float(np.linalg.norm(v)) for v in values]
            entry["norm_min"], entry["norm_max"] = min(norms), max(norms)
        if name == "energy":
            per_atom = [float(v) / len(f) for v, f in zip(values, (f for f in frames
                                                                    if name in f.labels),
                                                          strict=True)]
            entry["per_atom_min"], entry["per_atom_max"] = min(per_atom), max(per_atom)
        labels[name] = entry
    tags: dict[str, Counter] = {}
    for f in frames:
        for key, value in f.atoms.info.items():
            if isinstance(value, (str, int, np.integer)) and not isinstance(value, bool):
                tags.setdefault(key, Counter())[str(value)] += 1
    return {
        "source": source,
        "frames": len(frames),
        "atoms_min": min(sizes) if sizes else 0,
        "atoms_max": max(sizes) if sizes else 0,
        "atoms_total": int(sum(sizes)),
        "elements": dict(sorted(elements.items())),
        "periodic_frames": sum(bool(f.atoms.pbc.any()) for f in frames),
        "labels": labels,
        "tags": {k: dict(v) for k, v in tags.items() if len(v) <= 20},
    }


def format_summary(summary: dict) -> str:
    """A plain-text table of :func:`summarize`'s result."""
    lines = []
    if summary.get("source"):
        lines.append(f"source        {summary['source']}")
    lines.append(f"frames        {summary['frames']}")
    lines.append(f"atoms/frame   {summary['atoms_min']}..{summary['atoms_max']} "
                 f"({summary['atoms_total']} in total)")
    lines.append("elements      " + ", ".join(f"{k} {v}" for k, v in summary["elements"].items()))
    lines.append(f"periodic      {summary['periodic_frames']} of {summary['frames']} frames")
    for key, counts in summary["tags"].items():
        lines.append(f"tag {key:<9s} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if summary["labels"]:
        lines.append("")
        lines.append(f"{'label':<15s}{'frames':>7s}  {'unit':<15s}{'min':>12s}{'max':>12s}"
                     f"{'mean':>12s}{'std':>12s}")
        for name, e in summary["labels"].items():
            lines.append(f"{name:<15s}{e['frames']:>7d}  {e['unit']:<15s}{e['min']:>12.5g}"
                         f"{e['max']:>12.5g}{e['mean']:>12.5g}{e['std']:>12.5g}")
            if "norm_min" in e:
                lines.append(f"{'  |' + name + '|':<15s}{'':>7s}  {'':<15s}"
                             f"{e['norm_min']:>12.5g}{e['norm_max']:>12.5g}")
            if "per_atom_min" in e:
                lines.append(f"{'  per atom':<15s}{'':>7s}  {'':<15s}"
                             f"{e['per_atom_min']:>12.5g}{e['per_atom_max']:>12.5g}")
    else:
        lines.append("labels        none")
    return "\n".join(lines)
