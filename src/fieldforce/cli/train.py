"""``fieldforce train CONFIG.yaml``: train a model; checkpoints, ``--resume``, plots."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model from a YAML configuration",
        description=("Train a model on labelled frames (see fieldforce.training.config for the "
                     "file format). Writes model.pt, metrics.json, a learning curve and parity "
                     "plots to the configured output directory; checkpoints every few epochs."))
    p.add_argument("config", type=Path, metavar="CONFIG")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="train a new model in place of one already in the output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="training.seed of the file replaced by N (the split, the initial "
                        "weights, the batch order)")
    p.add_argument("--committee", type=int, default=None, metavar="K",
                   help="training.committee of the file replaced by K: K members (seeds "
                        "seed ... seed + K - 1, one split) in DIR/member_<k>, their "
                        "committee (mean, calibrated spread) in DIR/model.pt")
    p.add_argument("--output", type=Path, default=None, metavar="DIR",
                   help="the file's output directory replaced by DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from fieldforce.errors import ConfigError
    from fieldforce.training import load_config, train

    config = load_config(args.config)
    if args.seed is not None:
        config["training"]["seed"] = args.seed
    if args.committee is not None:
        if args.committee < 1:
            raise ConfigError(f"--committee {args.committee}: expected 1 or more members")
        config["training"]["committee"] = args.committee
    if args.output is not None:
        config["output"] = str(args.output.resolve())
    result = train(config, resume=args.resume, progress=not args.no_progress,
                   overwrite=args.overwrite)
    if "members" in result:
        for k, member in enumerate(result["members"]):
            print(f"member {k + 1}: {member['epochs']} epochs ({member['stopped_by']})"
                  + "".join(f", validation {name} RMSE {row['rmse']:.4g} {row['unit']}"
                            for name, row in member["valid"].items()
                            if name in ("energy", "forces") and "rmse" in row))
        print(f"trained a committee of {len(result['members'])} in {result['seconds']:.0f} s "
              f"on {result['n_train']} frames (spread calibrated on the validation set)")
    else:
        print(f"trained {result['epochs']} epochs ({result['stopped_by']}) in "
              f"{result['seconds']:.0f} s on {result['n_train']} frames")
    print(result["summary"])
    print(f"wrote {Path(config['output']) / 'model.pt'} and metrics.json")
    return 0
