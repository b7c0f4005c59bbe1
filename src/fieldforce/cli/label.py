"""``fieldforce label IN OUT``: DFT labels under a uniform field, resumable."""

from __future__ import annotations

from pathlib import Path

from fieldforce.data.labels import REFERENCE_LABELS
from fieldforce.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "label",
        help="label structures with DFT under a uniform field",
        description=(
            "Label every frame of IN (a canonical extxyz or a data spec) with a DFT backend "
            "and write a canonical extxyz OUT. Resumable: finished frames are kept in "
            "OUT.parts/ and a rerun labels only what is missing."
        ),
    )
    p.add_argument("input", type=Path, metavar="IN")
    p.add_argument("output", type=Path, metavar="OUT")
    p.add_argument("--backend", default="pyscf", help="pyscf (molecules) or gpaw (slabs)")
    p.add_argument("--xc", default=None, help="functional (pyscf default PBE0)")
    p.add_argument("--basis", default=None, help="basis set (pyscf default aug-cc-pvdz)")
    p.add_argument("--charge", type=int, default=None, help="net charge (e)")
    p.add_argument("--spin", type=int, default=None, help="2S (pyscf)")
    p.add_argument(
        "--efield", type=float, nargs=3, default=None, metavar=("EX", "EY", "EZ"),
        help="uniform field in V/Å for every frame (default: each frame's efield label, else 0)",
    )
    p.add_argument("--field-step", type=float, default=None,
                   help="central-difference step in V/Å for polarizability and Born charges")
    p.add_argument(
        "--properties", default="energy,forces,dipole",
        help=f"comma-separated subset of {','.join(REFERENCE_LABELS)}",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any backend setting (fieldforce config pyscf|gpaw lists them), "
                        "VALUE in YAML: --set mode=lcao --set kpts=[6,6] --set h=0.18")
    p.add_argument("--workers", type=int, default=1, help="parallel processes")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop starting new frames after this many seconds (rerun to continue)")
    p.add_argument("--strict", action="store_true", help="exit non-zero if any frame failed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from fieldforce.reference.backend import check_properties, get_backend
    from fieldforce.reference.labelling import label_frames

    props = check_properties(args.properties.split(","))
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if not args.input.exists():
        raise ConfigError(f"{args.input}: no such file")
    options = {
        key: value
        for key, value in (("xc", args.xc), ("basis", args.basis), ("charge", args.charge),
                           ("spin", args.spin), ("field_step", args.field_step))
        if value is not None
    }
    options.update(_settings(args.set))
    backend = get_backend(args.backend, **options)
    report = label_frames(
        args.input, args.output, backend, props,
        efield=args.efield, workers=args.workers, progress=not args.no_progress,
        max_seconds=args.max_seconds,
    )
    print(report)
    if report.stopped_early:
        return 3
    if report.failed and (args.strict or report.labelled + report.reused == 0):
        return 1
    return 0


def _settings(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings -> settings (VALUE parsed as YAML); the backend's settings
    checker then names a bad key or value."""
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set mode=lcao")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML") from None
    return out
