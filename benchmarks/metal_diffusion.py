"""Adatom diffusion under field with the metal model: a grid of Langevin runs, hops and
Arrhenius fits per field, and E_a(F) next to the model's NEB barriers.

    fieldforce train examples/train_metal.yaml          # -> runs/metal/model.pt
    python benchmarks/metal_diffusion.py --system "Cu(111)" --temperatures 80 110 150 \\
        --fields -1 0 1 --ps 100 --max-hours 2          # resumable: rerun to continue

Each (T, F) run is ``fieldforce md`` of the hop's initial state (``examples/metal``, 3x3
cell, bottom layer fixed) in a static field F along the normal: Langevin at T (friction
0.01/fs), 2 fs, frames every 50 fs, in ``benchmarks/runs/metal_diffusion/<system>_T<T>_F<F>/``
(ignored by git, so a fresh checkout lacks them; an unfinished run is resumed, a finished
one reused). Then ``fieldforce analyze diffusion`` over all of them, over every earlier run
of the same system and model in that folder (the first ``--skip-ps`` dropped), and over
the runs of the last results file whose trajectories are gone, as analysed then
(``--runs``; only if that file's NEB barriers are this model's to 1e-6 eV, i.e. the same
model), and ``fieldforce analyze barrier`` of the same hop at every field among them
(cached, redone when the model file is newer), a table of E_a(F) from the Arrhenius fits
against the NEB barrier E_m(F), and per temperature the field's shift of the activation energy,
-k_B T ln(D(F)/D(0)), against the NEB's E_m(F) - E_m(0) (the cheaper comparison: one
temperature with many hops; ``--temperatures 150`` alone is a valid grid).

Writes benchmarks/results/metal_diffusion_<system>.json, .png (the Arrhenius plot, where
two temperatures have hops) and _shifts.png (the field shifts).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "benchmarks" / "runs" / "metal_diffusion"
RESULTS = ROOT / "benchmarks" / "results"
FIELDFORCE = [str(Path(sys.executable).with_name("fieldforce"))]  # the venv's command
STEP_FS = 2.0
WRITE = 25


def run_dir(stem: str, temperature: float, field: float) -> Path:
    return RUNS / f"{stem}_T{temperature:g}_F{field:+g}"


def finished(folder: Path, steps: int) -> bool:
    summary = folder / "summary.json"
    return summary.exists() and json.loads(summary.read_text()).get("step", 0) >= steps


def run_md(folder: Path, structure: Path, model: Path, temperature: float, field: float,
           steps: int, seed: int, seconds_left: float | None) -> bool:
    """Run (or resume) one MD; False if stopped for time (it resumes on the next call)."""
    from _options import run_md as run_resumable

    return run_resumable(folder, (
        f"structure: {structure}\nmodel: {model}\noutput: {folder / 'md'}\n"
        f"field: {{type: static, vector: [0.0, 0.0, {field}]}}\n"
        f"ensemble: langevin\ntemperature_K: {temperature}\nfriction_per_fs: 0.01\n"
        f"timestep_fs: {STEP_FS}\nsteps: {steps}\nwrite_interval: {WRITE}\nseed: {seed}\n"),
        1, seconds_left)


def carried_runs(results: Path, model: Path, trajectories: list[str]) -> dict:
    """The runs of an earlier ``results`` file of the same model whose trajectories are
    not in ``trajectories`` (paths relative to the repository, as the runs' sources;
    deleted, or lost with a fresh checkout), in the form ``analyze diffusion --runs``
    reads; {} if there are none. Each keeps its ``source`` (the trajectory it was
    analysed from)."""
    if not results.exists():
        return {}
    data = json.loads(results.read_text())
    if data.get("model") != str(model):
        return {}
    names = data.get("trajectories", [])
    runs = []
    for i, run in enumerate(data.get("runs", [])):
        source = run.get("source") or (names[i] if len(names) == len(data["runs"]) else "")
        if source not in trajectories:
            runs.append({**run, "source": source or f"{results.name}, run {i}"})
    return {"runs": runs} if runs else {}


def same_barriers(results: Path, barrier: Path, tol: float = 1e-6) -> bool:
    """Whether the NEB barriers recorded in ``results`` (eV, per field) are those in the
    ``barrier`` JSON at every field the two share: the check that a retrained model file
    is the model the earlier runs used (a model path alone does not say)."""
    old, new = json.loads(results.read_text()).get("neb", {}), json.loads(barrier.read_text())
    at = dict(zip(new["fields"], new["barriers"], strict=True))
    shared = [(b, at[f]) for f, b in zip(old.get("fields", []), old.get("barriers", []),
                                         strict=True) if f in at]
    return bool(shared) and all(a is not None and b is not None and abs(a - b) <= tol
                                for a, b in shared)


def main() -> None:
    from fieldforce.data.atomic import write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", default="Cu(111)",
                        choices=["Cu(100)", "Cu(111)", "W(110)"])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "metal" / "model.pt")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[80, 110, 150])
    parser.add_argument("--fields", type=float, nargs="+", default=[-1.0, 0.0, 1.0])
    parser.add_argument("--ps", type=float, default=100.0, help="length of each run")
    parser.add_argument("--skip-ps", type=float, default=5.0, help="equilibration dropped")
    parser.add_argument("--max-hours", type=float, default=None)
    args = parser.parse_args()
    stem = {"Cu(100)": "cu100", "Cu(111)": "cu111", "W(110)": "w110"}[args.system]
    structure = ROOT / "examples" / "metal" / f"{stem}_hop_initial.xyz"
    model = args.model.resolve()
    steps = int(round(args.ps * 1000 / STEP_FS))
    start = time.perf_counter()
    grid = [(t, f) for f in args.fields for t in args.temperatures]
    for k, (temperature, field) in enumerate(grid):
        folder = run_dir(stem, temperature, field)
        if finished(folder / "md", steps):
            continue
        left = None
        if args.max_hours is not None:
            left = 3600 * args.max_hours - (time.perf_counter() - start)
            if left <= 0:
                print("stopped for --max-hours; rerun to continue")
                return
        print(f"run {k + 1}/{len(grid)}: T = {temperature:g} K, F = {field:+g} V/Å",
              flush=True)
        # the seed follows the run (system, T, F), not its place in this call's grid: two
        # calls must not give runs at one temperature and two fields the same noise
        seed = zlib.crc32(folder.name.encode()) % 2**31
        if not run_md(folder, structure, model, temperature, field, steps, seed, left):
            print("stopped for --max-hours; rerun to continue")
            return
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"metal_diffusion_{stem}.json"
    # every run of this system with this model, not only this call's grid: a call that
    # extends one temperature must not shrink the analysis to that temperature; relative
    # to the repository (analyze runs there), so the runs' sources are too
    trajectories = [str((folder / "md" / "trajectory.xyz").relative_to(ROOT))
                    for folder in sorted(RUNS.glob(f"{stem}_T*_F*"))
                    if (folder / "md" / "summary.json").exists()
                    and f"model: {model}\n" in (folder / "md.yaml").read_text()]
    # and the runs of the last analysis whose trajectories are gone (they are not kept
    # in git; a fresh checkout has the results file only), as analysed then
    earlier = carried_runs(out, model, trajectories)
    fields = sorted(set(args.fields) | {run["field"] for run in earlier.get("runs", [])})
    barrier = RUNS / f"{stem}_barrier.json"
    cached = json.loads(barrier.read_text()) if barrier.exists() else {}
    if not cached or barrier.stat().st_mtime < model.stat().st_mtime or \
            cached.get("model") != str(model) or not set(fields) <= set(cached["fields"]):
        subprocess.run([*FIELDFORCE, "analyze", "barrier", str(model), "--initial",
                        str(structure), "--final",
                        str(structure.with_name(f"{stem}_hop_final.xyz")), "--fields",
                        *map(str, fields), "--json", str(barrier)], check=True)
    if earlier and not same_barriers(out, barrier):
        print(f"the runs in {out} were made with another model at {model} (its NEB "
              "barriers differ): they are left out", flush=True)
        earlier = {}
    # analysed into scratch names, moved into place only once it succeeded: the results
    # file may hold the only record of runs whose trajectories are gone
    scratch = RUNS / f"{stem}_analysis.json"
    kept = RUNS / f"{stem}_earlier_runs.json"
    plots = [(scratch.with_suffix(".png"), out.with_suffix(".png")),
             (RUNS / f"{stem}_analysis_shifts.png", RESULTS / f"{out.stem}_shifts.png")]
    for path in (scratch, kept, *(new for new, _ in plots)):
        path.unlink(missing_ok=True)  # analyze refuses to overwrite
    if earlier:
        kept.write_text(json.dumps(earlier, indent=1) + "\n")
    subprocess.run([*FIELDFORCE, "analyze", "diffusion", *trajectories,
                    *(["--runs", str(kept)] if earlier else []), "--skip-fs",
                    str(1000 * args.skip_ps), "--barrier", str(barrier), "--json",
                    str(scratch), "--plot", str(plots[0][0])], check=True, cwd=ROOT)
    kept.unlink(missing_ok=True)
    for new, final in plots:
        if new.exists():
            new.replace(final)
        else:
            final.unlink(missing_ok=True)  # e.g. no Arrhenius fit any more
    result = json.loads(scratch.read_text())
    neb = result["neb"]
    result["model"] = str(model)
    result["command"] = " ".join(["python benchmarks/metal_diffusion.py", "--system",
                                  f'"{args.system}"', "--temperatures",
                                  *map(lambda t: f"{t:g}", args.temperatures), "--fields",
                                  *map(lambda f: f"{f:g}", args.fields), "--ps",
                                  f"{args.ps:g}"])
    result["trajectories"] = trajectories
    write_json(result, out)
    scratch.unlink()
    print(f"\n{'F (V/Å)':>8s} {'E_a Arrhenius (eV)':>20s} {'E_m NEB (eV)':>13s}")
    for fit in result.get("arrhenius", []):
        e_m = neb["barriers"][neb["fields"].index(fit["field"])] \
            if fit["field"] in neb["fields"] else float("nan")  # the shifts: printed above
        print(f"{fit['field']:8.2f} {fit['e_a']:12.4f} ± {fit['e_a_error']:.4f} {e_m:13.4f}")


if __name__ == "__main__":
    main()
