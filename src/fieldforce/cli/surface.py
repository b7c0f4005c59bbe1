"""``fieldforce analyze barrier MODEL`` (field-dependent migration barriers by NEB) and
``fieldforce analyze diffusion TRAJ.xyz`` (adatom hops, D(T, F), Arrhenius fits and the
field's shift of the activation energy): the surface-science analyses of
:mod:`fieldforce.analysis.barriers` and :mod:`fieldforce.analysis.diffusion`."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fieldforce.errors import ConfigError, DataError, in_file


def register(sub) -> None:
    """The barrier and diffusion parsers, under ``fieldforce analyze``."""
    q = sub.add_parser(
        "barrier", help="migration barrier of a hop vs the field along the surface normal",
        description="Climbing-image NEB (ASE) of the hop INITIAL -> FINAL with MODEL in a "
                    "uniform field F along the slab normal (+: out of the top surface into "
                    "the vacuum) for each field; the end states are relaxed at each field. "
                    "Fits E_m(F) = E_m0 - dmu F - 1/2 dalpha F^2 and reads dmu, dalpha "
                    "from the model at the zero-field path's minimum and saddle. Several "
                    "models (a committee, e.g. one config trained with different seeds) "
                    "each run their own NEB: the barriers, dmu and dalpha reported are "
                    "their mean, with the standard deviation beside them.")
    q.add_argument("model", type=Path, nargs="+", metavar="MODEL",
                   help="trained model(s); several: a committee (mean and spread)")
    q.add_argument("--initial", type=Path, required=True, metavar="A.xyz",
                   help="relaxed initial state (extxyz; its last frame; fixed atoms kept)")
    q.add_argument("--final", type=Path, required=True, metavar="B.xyz",
                   help="relaxed final state, same atoms in the same order")
    q.add_argument("--fields", type=float, nargs="+", required=True, metavar="F",
                   help="fields along the surface normal, V/Å")
    q.add_argument("--images", type=int, default=7, help="images including the ends")
    q.add_argument("--fmax", type=float, default=0.03, help="force convergence, eV/Å")
    q.add_argument("--steps", type=int, default=1000, help="most optimizer steps")
    q.add_argument("--plot", type=Path, default=None, help="write E_m(F) as PNG")
    q.add_argument("--json", type=Path, required=True, metavar="OUT.json",
                   help="write the barriers, fit, dmu and dalpha as JSON")
    q.add_argument("--paths", type=Path, default=None, metavar="PATHS.xyz",
                   help="write every field's relaxed images (extxyz; info: field_V_per_A, "
                        "image, energy_eV relative to the initial state, saddle) e.g. for "
                        "DFT single points at the model's minimum and saddle")
    q.set_defaults(func=barrier)

    q = sub.add_parser(
        "diffusion", help="adatom hops, diffusion coefficient and Arrhenius fit per field",
        description="Tracer diffusion of an adatom from one or more fieldforce md "
                    "trajectories of a slab (Langevin at several temperatures and fields): "
                    "hops between sites of the top layer's lattice, D = n l^2 / (4 t) and D "
                    "from the mean squared displacement, and per field an Arrhenius fit "
                    "D = D0 exp(-E_a / k_B T); per temperature, the field's shift of the "
                    "activation energy -k_B T ln(D(F) / D(F_ref)) (runs at the same "
                    "temperature and field pooled), next to the NEB's E_m(F) - E_m(F_ref) "
                    "with --barrier. Each run's temperature is read from the summary.json "
                    "beside its trajectory (or --temperature), its field from the frames' "
                    "efield along the surface normal.")
    q.add_argument("trajectories", type=Path, nargs="*", metavar="TRAJ.xyz")
    q.add_argument("--runs", type=Path, nargs="+", default=[], metavar="EARLIER.json",
                   help="runs analysed before (the --json of an earlier analyze diffusion), "
                        "pooled with the trajectories as they were analysed then: for runs "
                        "whose trajectories are no longer kept (a run also given as a "
                        "trajectory is an error)")
    q.add_argument("--temperature", type=float, nargs="+", default=None, metavar="K",
                   help="temperature of each trajectory (one value: all), K")
    q.add_argument("--atom", type=int, default=-1, help="index of the adatom (default: last)")
    q.add_argument("--capture", type=float, default=None,
                   help="capture radius of a site, in lattice spacings, short of the bridge "
                        "between sites (default: 0.7 of the site-to-bridge distance, 0.35 "
                        "spacings on (100), 0.20 on (111))")
    q.add_argument("--skip-fs", type=float, default=0.0,
                   help="drop the frames before this time (equilibration), fs")
    q.add_argument("--reference-field", type=float, default=0.0, metavar="V/Å",
                   help="the field the activation-energy shifts are taken from (default 0)")
    q.add_argument("--barrier", type=Path, default=None, metavar="BARRIER.json",
                   help="the JSON of `fieldforce analyze barrier` for the same hop: its "
                        "E_m(F) shifts are printed and plotted next to the MD's")
    q.add_argument("--plot", type=Path, default=None,
                   help="write the Arrhenius plot as PNG (the field shifts beside it as "
                        "PLOT_shifts.png)")
    q.add_argument("--json", type=Path, default=None,
                   help="write runs, fits and field shifts as JSON")
    q.set_defaults(func=diffusion)


def _structure(path: Path, what: str):
    from fieldforce.data.io import read_frames

    if not path.exists():
        raise ConfigError(f"{what} {path}: no such file")
    return read_frames(path)[-1].atoms


def barrier(args) -> int:
    from fieldforce.analysis.barriers import fit_barriers, plot_barriers
    from fieldforce.data.atomic import refuse_overwriting, write_json

    refuse_overwriting({"--plot": args.plot, "--json": args.json, "--paths": args.paths},
                       {**({"model": args.model[0]} if len(args.model) == 1 else
                           {f"model {k + 1}": m for k, m in enumerate(args.model)}),
                        "--initial": args.initial, "--final": args.final})
    if args.images < 3:
        raise ConfigError(f"--images must be at least 3, got {args.images}")
    initial = _structure(args.initial, "--initial")
    final = _structure(args.final, "--final")
    committee = len(args.model) > 1
    members, results, failed = [], [], []
    for k, path in enumerate(args.model):
        tag = f"model {k + 1} of {len(args.model)}: " if committee else ""
        try:
            result, member = _barrier_of(path, initial, final, args, tag)
        except DataError as exc:  # a member whose path leaves its data (e.g. collapses)
            if not committee:
                raise
            print(f"analyze barrier: {tag}failed, left out of the mean: {exc}", flush=True)
            failed.append({"model": str(path), "error": str(exc)})
            continue
        results.append(result)
        members.append(member)
    if committee and len(results) < 2:
        raise DataError(f"analyze barrier: {len(failed)} of the {len(args.model)} models "
                        f"failed, fewer than two are left for a committee; the first: "
                        f"{failed[0]['error']}")
    fields = results[0].fields
    if not committee:
        barriers, spread = results[0].barriers, None
        direct = (results[0].dmu, results[0].dalpha)
    else:
        table = np.array([r.barriers for r in results])  # [models, fields]
        # a band that did not converge has no barrier: left out of that field's mean
        table[~np.array([r.converged for r in results])] = np.nan
        counts = np.isfinite(table).sum(axis=0)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # fields with < 2 members
            barriers = np.nanmean(table, axis=0)
            spread = np.nanstd(table, axis=0, ddof=1)
        dmu = np.array([r.dmu for r in results])
        dalpha = np.array([r.dalpha for r in results])
        direct = (float(dmu.mean()), float(dalpha.mean()))
    good = np.isfinite(barriers)  # a committee's field where no band converged: none
    fit = fit_barriers(fields[good], barriers[good]) if len(set(fields[good])) >= 3 else None
    if not committee:
        out = members[0]
    else:
        out = {
            "models": [m["model"] for m in members], "initial": str(args.initial),
            "final": str(args.final), "normal": results[0].normal.tolist(),
            "fields": fields.tolist(), "barriers": _finite(barriers),
            "barriers_std": _finite(spread),
            "dmu": direct[0], "dmu_std": float(dmu.std(ddof=1)),
            "dalpha": direct[1], "dalpha_std": float(dalpha.std(ddof=1)),
            "reference_field": results[0].reference_field,
            "converged": np.all([r.converged for r in results], axis=0).tolist(),
            "members_converged": counts.tolist(),
            "fit": None if fit is None else {"e0": fit.e0, "dmu": fit.dmu,
                                             "dalpha": fit.dalpha, "rms": fit.rms},
            "units": members[0]["units"], "members": members, "failed": failed,
        }
        for f, b, e, n in zip(fields, barriers, spread, counts, strict=True):
            print(f"analyze barrier: committee: F = {f:+.3f} V/Å: barrier {b:.4f} ± {e:.4f} eV "
                  f"({n} of {len(results)} bands converged)")
        print(f"analyze barrier: committee dmu = {direct[0]:.4f} ± {out['dmu_std']:.4f} e·Å, "
              f"dalpha = {direct[1]:.4f} ± {out['dalpha_std']:.4f} e·Å²/V")
    if args.plot:
        e0 = fit.e0 if fit is not None else float(barriers[np.argmin(np.abs(fields))])
        plot_barriers(args.plot, fields, barriers, fit, direct=(e0, *direct), spread=spread,
                      members=list(table) if committee else None,  # converged bands
                      title=f"{args.initial.stem} -> {args.final.stem}")
        print(f"analyze barrier: wrote {args.plot}")
    if args.paths:
        _write_paths(args.paths, results,
                     [m["model"] for m in members] if committee else None)
        print(f"analyze barrier: wrote {args.paths}")
    write_json(out, args.json)
    print(f"analyze barrier: wrote {args.json}")
    return 0


def _finite(values) -> list:
    """JSON has no NaN: a field without a (converged) value is null."""
    return [float(v) if np.isfinite(v) else None for v in values]


def _barrier_of(path: Path, initial, final, args, tag: str = "") -> tuple:
    """One model's NEB at every field: the :class:`FieldBarriers` result and its JSON
    entry (the whole output of a one-model run)."""
    from fieldforce.analysis.barriers import fit_barriers
    from fieldforce.models import load_model
    from fieldforce.simulation.calculator import FieldForceCalculator
    from fieldforce.simulation.neb import field_barriers

    model = load_model(path)

    def make_calculator(vector):
        return FieldForceCalculator(model, efield=vector)

    result = field_barriers(make_calculator, initial, final, args.fields, images=args.images,
                            fmax=args.fmax, steps=args.steps,
                            progress=lambda line: print(f"analyze barrier: {tag}{line}",
                                                        flush=True))
    fit = fit_barriers(result.fields, result.barriers) if len(set(args.fields)) >= 3 else None
    print(f"analyze barrier: {tag}dmu = {result.dmu:.4f} e·Å, dalpha = {result.dalpha:.4f} "
          f"e·Å²/V (saddle - initial, read at F = {result.reference_field:g} V/Å)")
    if fit is not None:
        print(f"analyze barrier: {tag}fit E_m0 = {fit.e0:.4f} eV, dmu = {fit.dmu:.4f} e·Å, "
              f"dalpha = {fit.dalpha:.4f} e·Å²/V, rms {fit.rms * 1000:.2f} meV")
    if not all(result.converged):
        bad = [float(f) for f, ok in zip(result.fields, result.converged, strict=True) if not ok]
        print(f"analyze barrier: {tag}warning: not converged within {args.steps} steps at "
              f"F = {bad} V/Å")
    entry = {
        "model": str(path), "initial": str(args.initial), "final": str(args.final),
        "normal": result.normal.tolist(),
        "fields": result.fields.tolist(), "barriers": result.barriers.tolist(),
        "dmu": result.dmu, "dalpha": result.dalpha,
        "reference_field": result.reference_field,
        "dipoles": result.dipoles, "polarizabilities": result.polarizabilities,
        "energies": result.energies.tolist(), "path_length": result.path_length.tolist(),
        "saddle_index": result.saddle_index.tolist(), "converged": result.converged,
        "fit": None if fit is None else {"e0": fit.e0, "dmu": fit.dmu, "dalpha": fit.dalpha,
                                         "rms": fit.rms},
        "units": {"fields": "V/Å", "barriers": "eV", "dmu": "e·Å", "dalpha": "e·Å²/V"},
    }
    return result, entry


def _write_paths(path: Path, results, models=None) -> None:
    """Every field's relaxed band (of every committee member, tagged ``member`` and
    ``model``) as one extxyz, written atomically."""
    import ase.io

    from fieldforce.data.atomic import atomic_path

    frames = []
    for m, result in enumerate(results):
        for field, band, energies, saddle in zip(result.fields, result.paths, result.energies,
                                                 result.saddle_index, strict=True):
            for k, image in enumerate(band):
                atoms = image.copy()
                atoms.info = {"field_V_per_A": float(field), "image": k,
                              "energy_eV": float(energies[k]), "saddle": bool(k == saddle)}
                if models is not None:
                    atoms.info.update(member=m, model=str(models[m]))
                frames.append(atoms)
    with atomic_path(path) as temporary:
        ase.io.write(temporary, frames, format="extxyz")


def _run_temperature(trajectory: Path, given: float | None) -> float:
    import json

    if given is not None:
        return given
    summary = trajectory.parent / "summary.json"
    if summary.exists():
        data = json.loads(summary.read_text())
        if data.get("ensemble", "nve") != "nve" and data.get("temperature_K"):
            return float(data["temperature_K"])
    raise ConfigError(f"{trajectory}: no thermostat temperature in {summary}; give "
                      "--temperature")


def diffusion(args) -> int:
    from fieldforce.analysis.diffusion import (
        arrhenius,
        check_capture,
        diffusion_run,
        field_shifts,
        plot_arrhenius,
        plot_field_shifts,
        to_dict,
    )
    from fieldforce.analysis.trajectory import first_frame_at, frame_times, read_trajectory
    from fieldforce.data.atomic import refuse_overwriting, write_json

    shift_plot = (None if args.plot is None
                  else args.plot.with_name(args.plot.stem + "_shifts" + args.plot.suffix))
    refuse_overwriting({"--plot": args.plot, "--plot (shifts)": shift_plot,
                        "--json": args.json},
                       {f"trajectory {i}": p for i, p in enumerate(args.trajectories)}
                       | {f"--runs {i}": p for i, p in enumerate(args.runs)})
    check_capture(args.capture)
    neb = None if args.barrier is None else _neb_barriers(args.barrier)
    temps = args.temperature
    if temps is not None and len(temps) not in (1, len(args.trajectories)):
        raise ConfigError(f"--temperature takes one value or one per trajectory "
                          f"({len(args.trajectories)}); got {len(temps)}")
    if not args.trajectories and not args.runs:
        raise ConfigError("give trajectories to analyse, or --runs of an earlier analysis")
    runs = []
    for i, path in enumerate(args.trajectories):
        temperature = _run_temperature(path, None if temps is None
                                       else temps[0 if len(temps) == 1 else i])
        frames = read_trajectory(path)
        times = frame_times(frames, path)
        start = first_frame_at(times, args.skip_fs, path)
        with in_file(path):
            runs.append(diffusion_run(frames[start:], times[start:], temperature,
                                      adatom=args.atom, capture=args.capture,
                                      source=str(path)))
    runs += _earlier_runs(args.runs, args.trajectories)
    fits = arrhenius(runs)
    escape_fits = arrhenius(runs, use="escapes")
    print(f"{'T (K)':>7s} {'F (V/Å)':>8s} {'t (ps)':>8s} {'hops':>5s} {'D_hops (Å²/ps)':>16s} "
          f"{'D_msd (Å²/ps)':>14s}")
    for r in runs:
        print(f"{r.temperature:7.1f} {r.field:8.3f} {r.duration_fs / 1000:8.2f} {r.hops:5d} "
              f"{r.d_hops:9.4g} ± {r.d_hops_error:<6.2g}{r.d_msd:14.4g}")
    for f in fits:
        print(f"analyze diffusion: F = {f.field:+.3f} V/Å: D0 = {f.d0:.4g} Å²/ps, E_a = "
              f"{f.e_a:.4f} ± {f.e_a_error:.4f} eV ({f.n} temperatures)")
    for f in escape_fits:
        print(f"analyze diffusion: F = {f.field:+.3f} V/Å: escapes from the first site kind: "
              f"nu0 = {f.d0:.4g} /ps, E_a = {f.e_a:.4f} ± {f.e_a_error:.4f} eV "
              f"({f.n} temperatures)")
    if not fits:
        print("analyze diffusion: no field has hops at two temperatures: no Arrhenius fit")
    if args.plot and fits:
        plot_arrhenius(args.plot, runs, fits, title="adatom diffusion")
        print(f"analyze diffusion: wrote {args.plot}")
    shifts = field_shifts(runs, args.reference_field)
    if shifts:
        ref = args.reference_field
        print(f"\nshift of the activation energy from F = {ref:+g} V/Å, meV: from D, "
              "-k_B T ln(D(F)/D(ref)); from the escape rate k out of the first kind of "
              "site, -k_B T ln(k(F)/k(ref))" + ("; the NEB's E_m(F) - E_m(ref)" if neb
                                                 else ""))
        for sh in shifts:
            line = (f"{sh.temperature:7.1f} K {sh.field:+8.3f} V/Å   D {1000 * sh.shift:7.1f} ± "
                    f"{1000 * sh.shift_error:5.1f} ({sh.hops} / {sh.reference_hops} hops)")
            if sh.escape_shift is not None:
                line += (f"   k {1000 * sh.escape_shift:7.1f} ± "
                         f"{1000 * sh.escape_shift_error:5.1f} ({sh.escapes} / "
                         f"{sh.reference_escapes} escapes)")
            e_m = _neb_shift(neb, sh.field, ref)
            print(line + ("" if e_m is None else f"   NEB {1000 * e_m:7.1f}"))
        if shift_plot:
            plot_field_shifts(shift_plot, shifts, neb, title="adatom diffusion: field shift")
            print(f"analyze diffusion: wrote {shift_plot}")
    else:
        print(f"analyze diffusion: no temperature has hops at F = {args.reference_field:+g} "
              "V/Å and another field: no field shifts")
    if args.json:
        result = to_dict(runs, fits, shifts, escape_fits)
        if neb is not None:
            result["neb"] = {"fields": neb[0], "barriers": neb[1], "source": str(args.barrier)}
        write_json(result, args.json)
        print(f"analyze diffusion: wrote {args.json}")
    return 0


def _earlier_runs(files: list[Path], trajectories: list[Path]) -> list:
    """The runs of earlier analyses' JSON files; one whose trajectory is also analysed now
    (or that two files both hold) would be counted twice: an error naming both."""
    from fieldforce.analysis.diffusion import runs_from_dict
    from fieldforce.data.atomic import same_path

    runs, seen = [], [(str(t), "a trajectory given") for t in trajectories]
    for path in files:
        for run in runs_from_dict(_read_json(path), str(path)):
            twice = next((what for name, what in seen if same_path(name, run.source)), None)
            if twice is not None:
                raise ConfigError(f"{path}: its run of {run.source} is also {twice}: it "
                                  "would be counted twice")
            seen.append((run.source, f"a run in {path}"))
            runs.append(run)
    return runs


def _neb_barriers(path: Path) -> tuple[list[float], list[float]]:
    """(fields V/Å, barriers eV) of an `analyze barrier` JSON; unconverged fields (null)
    are left out."""
    data = _read_json(path)
    try:
        pairs = [(float(f), float(b)) for f, b in zip(data["fields"], data["barriers"],
                                                       strict=True) if b is not None]
    except (KeyError, TypeError, ValueError):
        raise DataError("expected the JSON of `fieldforce analyze barrier` (keys 'fields' "
                        "and 'barriers', lists of equal length)", path=str(path)) from None
    return [f for f, _ in pairs], [b for _, b in pairs]


def _read_json(path: Path):
    """The content of a JSON file; a file that is not JSON is a DataError naming it."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"not JSON ({exc.msg}, line {exc.lineno})", path=str(path)) from None


def _neb_shift(neb, field: float, reference: float) -> float | None:
    """E_m(field) - E_m(reference) from ``_neb_barriers``' lists, None where either is not
    there."""
    if neb is None:
        return None
    at = {round(f, 6): b for f, b in zip(*neb, strict=True)}
    if round(field, 6) not in at or round(reference, 6) not in at:
        return None
    return at[round(field, 6)] - at[round(reference, 6)]
