"""``fieldforce learn CONFIG.yaml``: on-the-fly learning (MD, DFT where the model is unsure,
refit, continue)."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "learn", help="on-the-fly learning: MD with a kernel model, DFT where it is unsure",
        description=("Run MD with a closed-form model with uncertainties (model head gpr); "
                     "when the chosen uncertainty passes the threshold, label that structure "
                     "with DFT, refit and continue, until the MD run is covered or the DFT "
                     "budget is spent (see fieldforce.pipelines.learn for the file format). "
                     "Writes data.xyz, model.pt, md/ and learn.json to the output directory."))
    p.add_argument("config", type=Path, metavar="CONFIG")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    from fieldforce.config_files import read_mapping
    from fieldforce.errors import ConfigError
    from fieldforce.pipelines.learn import learn

    if not args.config.is_file():
        raise ConfigError(f"{args.config}: no such learn config file")
    state = learn(read_mapping(args.config, "learn configuration"),
                  base_dir=args.config.resolve().parent, resume=args.resume,
                  progress=not args.no_progress, source=str(args.config))
    print(f"learn: {state['dft_calls']} DFT calls, {state['frames']} labelled frames, "
          f"{state['steps']} MD steps ({state['ended_by']})")
    return 0
