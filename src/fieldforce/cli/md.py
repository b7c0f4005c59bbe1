"""``fieldforce md CONFIG.yaml``: molecular dynamics in an external field, resumable."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "md",
        help="run molecular dynamics with a model, optionally in an electric field",
        description=(
            "Run the MD simulation described by CONFIG (YAML; `fieldforce config md` prints "
            "the keys). Relative paths in it are taken from the config file's directory. Writes "
            "trajectory.xyz, md.log and summary.json into the config's output directory."
        ),
    )
    p.add_argument("config", type=Path, metavar="CONFIG.yaml")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last frame of an existing trajectory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from fieldforce.simulation.md import MDRun

    summary = MDRun.from_file(args.config, resume=args.resume,
                              progress=not args.no_progress).run()
    rate = summary["ns_per_day"]
    print(f"md: {summary['steps_done']} steps done (step {summary['step']}, "
          f"t = {summary['time_fs']:.2f} fs) in {summary['wall_time_s']:.1f} s"
          + (f", {rate:.3f} ns/day" if rate else "")
          + (f", mean T {summary['mean_temperature_K']:.1f} K"
             if summary["mean_temperature_K"] is not None else ""))
    if summary["energy_drift_eV_per_atom_per_ps"] is not None:
        print(f"md: energy drift {summary['energy_drift_eV_per_atom_per_ps']:.3e} eV/atom/ps")
    print(f"md: wrote {summary['trajectory']}")
    return 0
