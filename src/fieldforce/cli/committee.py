"""``fieldforce committee MODEL MODEL ... -o OUT``: one model file from several trained ones."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "committee", help="assemble trained models into a committee (mean and spread)",
        description=("One model file whose predictions are the mean of the given models' "
                     "(one family and head, the same elements: typically one training "
                     "file run with different training.seed) and whose uncertainties "
                     "(energy_uncertainty, forces_uncertainty, and the dipole's and "
                     "polarizability's where the family has them) are their spread, "
                     "scaled on held-out frames with --calibrate. It costs one evaluation "
                     "per member per step."))
    p.add_argument("models", type=Path, nargs="+", metavar="MODEL",
                   help="two or more trained model files")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                   help="the committee's model file")
    p.add_argument("--calibrate", type=Path, default=None, metavar="DATA",
                   help="labelled frames the members were not trained on (their "
                        "validation part, say): each uncertainty is scaled so that its "
                        "root-mean-square z-score there is 1; without it the spreads are "
                        "reported as they are (they underestimate the error)")
    p.set_defaults(func=run)


def run(args) -> int:
    from fieldforce.data.atomic import refuse_overwriting
    from fieldforce.data.io import read_frames, source_files
    from fieldforce.errors import DataError
    from fieldforce.models import CommitteeModel, load_model, save_model

    inputs = {f"model {k + 1}": path for k, path in enumerate(args.models)}
    if args.calibrate is not None:
        if not args.calibrate.exists():
            raise DataError(f"{args.calibrate}: no such data file (--calibrate)")
        inputs.update(source_files(args.calibrate))
    refuse_overwriting({"committee": args.output}, inputs)
    models = [load_model(path) for path in args.models]
    committee = CommitteeModel.from_models(models)
    extra = {"members": [str(path) for path in args.models]}
    if args.calibrate is not None:
        frames = read_frames(args.calibrate)
        factors = committee.calibrate(frames)
        if not factors:
            raise DataError(f"{args.calibrate}: no labels of "
                            f"{', '.join(committee.spread_of)} to calibrate the spreads on")
        extra["calibration"] = {"data": str(args.calibrate), "frames": len(frames),
                                "factors": factors}
        print("uncertainty factors (spread -> error): " + ", ".join(
            f"{name} {factor:.2f}" for name, factor in factors.items()))
    save_model(committee, args.output, extra=extra)
    print(f"wrote {args.output}: a committee of {len(models)} {models[0].family} models")
    return 0
