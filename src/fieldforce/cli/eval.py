"""``fieldforce eval MODEL DATA``: errors of a model on labelled data, parity plots."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="score a model on labelled data",
        description=("Per property RMSE, MAE and relative RMSE (RMSE / standard deviation of "
                     "the reference labels, components pooled), in internal units; energies "
                     "per atom; outputs without labels (e.g. uncertainties) as mean, RMS and "
                     "max. DATA is a data spec or a canonical extxyz."))
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("data", type=Path, metavar="DATA")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write metrics here")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR",
                   help="write parity plots (PNG) to this directory, and calibration "
                        "plots for outputs with a predicted uncertainty")
    p.set_defaults(func=run)


def run(args) -> int:
    from fieldforce.data.atomic import refuse_overwriting, write_json
    from fieldforce.data.io import read_frames, source_files
    from fieldforce.errors import ConfigError, DataError
    from fieldforce.models import load_model
    from fieldforce.training.evaluation import evaluate_frames, format_metrics
    from fieldforce.training.plots import calibration_plots, parity_plots

    refuse_overwriting({"--json metrics": args.json}, {"model": args.model,
                                                       **source_files(args.data)})
    if args.plots is not None and args.plots.exists() and not args.plots.is_dir():
        raise ConfigError(f"--plots {args.plots}: is a file; give a directory for the "
                          "parity plots")
    model = load_model(args.model)
    if not args.data.exists():
        raise DataError(f"{args.data}: no such data file")
    frames = read_frames(args.data)
    table, pairs = evaluate_frames(model, frames)
    if not table:
        predicted = ", ".join(o.name for o in model.output_specs() if o.label is not None
                              and o.role == "property")
        raise DataError(f"{args.data}: no labels of a property the model predicts "
                        f"({predicted})")
    print(format_metrics(table, f"{args.model} on {args.data} ({len(frames)} frames)"))
    if args.json:
        write_json(table, args.json)
        print(f"wrote {args.json}")
    if args.plots:
        for path in parity_plots(pairs, args.plots, table) + calibration_plots(pairs,
                                                                                args.plots):
            print(f"wrote {path}")
    return 0
