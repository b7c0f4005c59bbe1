"""``fieldforce analyze``: the analysis subcommands.

``ir`` and ``hysteresis TRAJ.xyz`` (spectra and P(E) loops of MD trajectories) live here;
``barrier`` and ``diffusion`` (adatoms on surfaces under field) in :mod:`.surface`."""

from __future__ import annotations

from pathlib import Path

from fieldforce.cli import surface
from fieldforce.errors import ConfigError, in_file


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="analyse: IR spectrum, hysteresis loop, field-dependent barrier, diffusion",
        description="Analyse a trajectory written by fieldforce md (extxyz).")
    sub = p.add_subparsers(dest="analyze_command", metavar="ANALYSIS", required=True)

    q = sub.add_parser(
        "ir", help="IR spectrum from the dipole, or from the polarization current",
        description="IR absorption line shape from the autocorrelation of the dipole "
                    "derivative (key 'dipole', central differences) or, with --current, of "
                    "the polarization current J = sum_i Z*_i v_i (keys 'born_charges' and "
                    "'momenta': run fieldforce md with write_born_charges: true). Frames "
                    "must be equally spaced in time_fs.")
    q.add_argument("trajectory", type=Path, metavar="TRAJ.xyz")
    q.add_argument("--current", action="store_true",
                   help="use J = sum_i Z*_i v_i instead of the dipole's time derivative")
    q.add_argument("--skip-fs", type=float, default=0.0,
                   help="drop the frames before this time (equilibration), fs")
    q.add_argument("--max-correlation-fs", type=float, default=None,
                   help="longest correlation time (default: half the series)")
    q.add_argument("--window", choices=("hann", "gaussian", "none"), default="hann")
    q.add_argument("--broadening-cm", type=float, default=None,
                   help="FWHM of a Gaussian broadening, cm^-1")
    q.add_argument("--temperature", type=float, default=None,
                   help="K: apply the harmonic quantum correction at this temperature")
    q.add_argument("--min-height", type=float, default=0.05,
                   help="smallest peak in the table, fraction of the maximum")
    q.add_argument("--plot", type=Path, default=None, help="write the spectrum as PNG")
    q.add_argument("--json", type=Path, default=None, help="write the spectrum as JSON")
    q.set_defaults(func=ir)

    q = sub.add_parser(
        "hysteresis", help="remanent polarization and coercive field under an AC field",
        description="P(E) loop from the keys 'efield' (V/A) and 'polarization' (e/A^2) of "
                    "every frame (fieldforce md with a periodic latent-charge model and a "
                    "sinusoidal field): P where E crosses zero and E where P crosses the "
                    "loop centre, per branch, averaged over half cycles.")
    q.add_argument("trajectory", type=Path, metavar="TRAJ.xyz")
    q.add_argument("--axis", default="auto",
                   help="x, y, z or auto (the direction of the strongest field; default)")
    q.add_argument("--skip-fs", type=float, default=0.0,
                   help="drop the frames before this time (the first cycle's transient), fs")
    q.add_argument("--no-center", action="store_true",
                   help="read the coercive field where P crosses zero, not the loop centre")
    q.add_argument("--plot", type=Path, default=None, help="write the loop as PNG")
    q.add_argument("--json", type=Path, default=None, help="write the numbers as JSON")
    q.set_defaults(func=hysteresis)

    surface.register(sub)


def _frames(args):
    from fieldforce.analysis.trajectory import first_frame_at, frame_times, read_trajectory
    from fieldforce.data.atomic import refuse_overwriting

    refuse_overwriting({"--plot": args.plot, "--json": args.json},
                       {"trajectory": args.trajectory})
    if args.skip_fs < 0:
        raise ConfigError(f"--skip-fs must be >= 0 fs, got {args.skip_fs}")
    frames = read_trajectory(args.trajectory)
    times = frame_times(frames, args.trajectory)
    start = first_frame_at(times, args.skip_fs, args.trajectory)
    return frames[start:], times[start:], start


def ir(args) -> int:
    from fieldforce.analysis import ir_spectrum, polarization_current_spectrum
    from fieldforce.analysis.trajectory import (
        frame_born_charges,
        frame_series,
        frame_velocities,
        uniform_timestep,
    )
    from fieldforce.data.atomic import write_json

    path = args.trajectory
    frames, times, start = _frames(args)
    dt = uniform_timestep(times, path, start)
    options = dict(max_correlation_fs=args.max_correlation_fs, window=args.window,
                   broadening_cm=args.broadening_cm, temperature=args.temperature)
    if args.current:
        born = frame_born_charges(frames, path, start)
        velocities = frame_velocities(frames, path, start)
        with in_file(path):
            spectrum = polarization_current_spectrum(born, velocities, dt, **options)
    else:
        dipoles = frame_series(frames, "dipole", path, (3,), start=start)
        with in_file(path):
            spectrum = ir_spectrum(dipoles, dt, method="derivative", **options)
    source = "polarization current sum_i Z*_i v_i" if args.current else "dipole derivative"
    print(f"analyze ir: {path}, {len(frames)} frames {dt:g} fs apart, {source}, resolution "
          f"{spectrum.metadata['resolution_cm']:.1f} cm^-1")
    print(spectrum.table(min_height=args.min_height))
    if args.plot:
        spectrum.plot(args.plot, title=f"IR spectrum ({source})")
        print(f"analyze ir: wrote {args.plot}")
    if args.json:
        write_json(spectrum.to_dict(), args.json)
        print(f"analyze ir: wrote {args.json}")
    return 0


def hysteresis(args) -> int:
    from fieldforce.analysis import hysteresis_loop
    from fieldforce.analysis.trajectory import frame_series
    from fieldforce.data.atomic import write_json

    path = args.trajectory
    frames, _, start = _frames(args)
    field = frame_series(frames, "efield", path, (3,), start=start)
    polarization = frame_series(frames, "polarization", path, (3,), start=start)
    with in_file(path):
        loop = hysteresis_loop(field, polarization,
                               axis=None if args.axis == "auto" else args.axis,
                               center=not args.no_center)
    print(f"analyze hysteresis: {path}, {len(frames)} frames, axis "
          f"{[round(float(x), 4) for x in loop.axis]}")
    print(loop.table())
    if args.plot:
        loop.plot(args.plot, title=f"hysteresis loop ({path.name})")
        print(f"analyze hysteresis: wrote {args.plot}")
    if args.json:
        write_json({"trajectory": str(path), "skip_fs": args.skip_fs, **loop.to_dict()},
                   args.json)
        print(f"analyze hysteresis: wrote {args.json}")
    return 0
