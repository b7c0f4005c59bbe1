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
                        "weights, the batch order): the members of a committee")
    p.add_argument("--output", type=Path, default=None, metavar="DIR",
                   help="the file's output directory replaced by DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from fieldforce.training import load_config, train

    config = load_config(args.config)
    if args.seed is not None:
        config["training"]["seed"] = args.seed
    if args.output is not None:
        config["output"] = str(args.output.resolve())
    result = train(config, resume=args.resume, progress=not args.no_progress,
                   overwrite=args.overwrite)
    print(f"trained {result['epochs']} epochs ({result['stopped_by']}) in "
          f"{result['seconds']:.0f} s on {result['n_train']} frames")
    print(result["summary"])
    print(f"wrote {Path(config['output']) / 'model.pt'} and metrics.json")
    return 0
