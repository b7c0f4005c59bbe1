"""A Cu nanotip of >= 5,000 atoms in MD under a strong applied field, the field re-solved
by finite elements as the tip moves (issue 16).

    fieldforce train examples/train_metal.yaml                        # -> runs/metal/model.pt
    python benchmarks/fem_tip_md.py --atoms 5000 --e0 1.0 --temperature 700 --ps 2
    python benchmarks/fem_tip_md.py --analyse-only                    # table + pictures

The tip is ``fem_tip_cost.py``'s (a hemisphere-capped cylinder of fcc sites, height 3R,
on a 4-layer Cu(100) slab whose bottom layer is fixed). Langevin MD with the metal
field-response model (``runs/metal/model.pt``) and ``field: {type: fem}``: the mesh graded
away from the apex (``--apex-growth``, default 0.02 per Å, up to 1.2 Å: ~2 % RMS
difference in the cap's fields from a 0.2 Å mesh, ``fem_grading.py``), re-solved when the surface
atoms' RMS displacement since the last solve exceeds ``--tolerance`` Å. Resumable: run
the same command again (``--hours`` stops it cleanly, with a checkpoint).

Output (``benchmarks/runs/fem_tip_md/``, not tracked; the analysis in
``benchmarks/results/fem_tip_md.json`` and ``fem_tip_md.png``): apex beta and apex height
at every solve, the fraction of wall time in the FEM solves against the model, the
number of atoms that moved more than half a nearest-neighbour distance (1.28 Å) from
where they started (surface diffusion events, the thermal RMS being ~0.15 Å), and the tip
at start and end, coloured by that displacement.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
STEP_FS = 2.0
HOP = 3.61 / 2**0.5 / 2  # half the Cu nearest-neighbour distance, Å


def run(folder: Path, args) -> bool:
    """Run or resume the MD; False if stopped for time."""
    import ase.io

    from _options import run_md
    from fem_tip_cost import build_tip, radius_for

    folder.mkdir(parents=True, exist_ok=True)
    structure = folder / "tip.xyz"
    if not structure.exists():
        ase.io.write(structure, build_tip(radius_for(args.atoms)), format="extxyz")
    steps = int(round(args.ps * 1000 / STEP_FS))
    config = (
        f"structure: {structure}\nmodel: {args.model.resolve()}\noutput: {folder / 'md'}\n"
        f"field: {{type: fem, e0: {args.e0}, tolerance: {args.tolerance}, gap: 40.0, "
        f"apex_growth: {args.apex_growth}, size_far: 1.2}}\n"
        f"ensemble: langevin\ntemperature_K: {args.temperature}\nfriction_per_fs: 0.01\n"
        f"timestep_fs: {STEP_FS}\nsteps: {steps}\nwrite_interval: {args.write}\n"
        f"seed: 1\n")
    return run_md(folder, config, args.threads, args.hours * 3600 if args.hours else None)


def field_log(path: Path) -> np.ndarray:
    """[solves, 9] rows of field.log (time_fs, beta, apex height, apex field, rms moved
    (nan for the first), elements, remeshed, mesh s, solve s)."""
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        rows.append([float("nan") if v == "-" else float(v) for v in line.split()])
    return np.array(rows)


def analyse(folder: Path, out_json: Path, out_png: Path) -> dict:
    import ase.io
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.visualize.plot import plot_atoms

    frames = ase.io.read(folder / "md" / "trajectory.xyz", ":")
    first, last = frames[0], frames[-1]
    moved = np.linalg.norm(last.positions - first.positions, axis=1)
    log = field_log(folder / "md" / "field.log")
    summaries = sorted((folder / "md").glob("summary*.json"))
    summary = json.loads((folder / "md" / "summary.json").read_text())
    fem_seconds = float(np.nansum(log[:, 7] + log[:, 8]))
    wall = float(summary.get("wall_time_s") or float("nan"))
    result = {
        "atoms": len(first), "time_ps": float(last.info.get("time_fs", 0.0)) / 1000,
        "steps": int(summary.get("step", 0)), "solves": int(len(log)),
        "remeshes": int(np.nansum(log[:, 6])), "elements_last": int(log[-1, 5]),
        "beta_first": float(log[0, 1]), "beta_last": float(log[-1, 1]),
        "beta_min": float(log[:, 1].min()), "beta_max": float(log[:, 1].max()),
        "apex_height_first": float(log[0, 2]), "apex_height_last": float(log[-1, 2]),
        "apex_field_max": float(log[:, 3].max()),
        "wall_s": wall, "fem_s": fem_seconds, "fem_fraction": fem_seconds / wall,
        "moved_more_than_half_bond": int((moved > HOP).sum()),
        "moved_max": float(moved.max()),
        "mean_temperature_K": summary.get("mean_temperature_K"),
        "summaries": [p.name for p in summaries],
    }
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    t_ps = log[:, 0] / 1000
    axes[0, 0].plot(t_ps, log[:, 1], "o-", ms=3)
    axes[0, 0].set(xlabel="time (ps)", ylabel="apex β", title="field enhancement")
    axes[0, 1].plot(t_ps, log[:, 2] - log[0, 2], "o-", ms=3)
    axes[0, 1].set(xlabel="time (ps)", ylabel="apex height change (Å)", title="apex height")
    colors = plt.cm.viridis(np.clip(moved / (2 * HOP), 0, 1))
    for ax, atoms, title in ((axes[1, 0], first, "start, 0 ps"),
                             (axes[1, 1], last, f"end, {result['time_ps']:.2f} ps")):
        plot_atoms(atoms, ax, rotation="-90x", colors=colors, radii=0.9)
        ax.set_title(f"{title} (colour: displacement, yellow > 2.6 Å)")
        ax.set_axis_off()
    fig.tight_layout()
    from fieldforce.data.atomic import save_figure

    save_figure(fig, out_png, dpi=110)
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atoms", type=int, default=5000)
    parser.add_argument("--e0", type=float, default=1.0, help="applied field, V/Å")
    parser.add_argument("--temperature", type=float, default=700.0)
    parser.add_argument("--ps", type=float, default=2.0)
    parser.add_argument("--tolerance", type=float, default=0.2,
                        help="re-solve when the surface RMS displacement exceeds this, Å")
    parser.add_argument("--apex-growth", type=float, default=0.02)
    parser.add_argument("--write", type=int, default=25, help="write every N steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hours", type=float, default=None)
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "metal" / "model.pt")
    parser.add_argument("--folder", type=Path,
                        default=ROOT / "benchmarks" / "runs" / "fem_tip_md")
    parser.add_argument("--analyse-only", action="store_true")
    args = parser.parse_args()
    if not args.analyse_only and not run(args.folder, args):
        print("stopped for time; run the same command again to resume")
    results = ROOT / "benchmarks" / "results"
    result = analyse(args.folder, results / "fem_tip_md.json", results / "fem_tip_md.png")
    print("| atoms | ps | solves (remeshed) | β first → last (min-max) | apex height change Å "
          "| max apex field V/Å | FEM share of wall | atoms moved > 1.28 Å |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {result['atoms']} | {result['time_ps']:.2f} | {result['solves']} "
          f"({result['remeshes']}) | {result['beta_first']:.2f} → {result['beta_last']:.2f} "
          f"({result['beta_min']:.2f}-{result['beta_max']:.2f}) | "
          f"{result['apex_height_last'] - result['apex_height_first']:+.2f} | "
          f"{result['apex_field_max']:.2f} | {100 * result['fem_fraction']:.0f} % | "
          f"{result['moved_more_than_half_bond']} |")


if __name__ == "__main__":
    main()
