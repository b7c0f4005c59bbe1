"""``fieldforce data info|convert|split``: look at, convert and split labelled data."""

from __future__ import annotations

from pathlib import Path

from fieldforce.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="inspect, convert and split labelled data")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    q = sub.add_parser("info", help="frames, elements, labels, ranges and units")
    q.add_argument("source", help="canonical extxyz or data spec (.yaml)")
    q.add_argument("--json", type=Path, default=None, help="also write the summary as JSON")
    q.set_defaults(func=info)

    q = sub.add_parser("convert", help="write a canonical extxyz (canonical keys, internal units)")
    q.add_argument("source", help="data spec (.yaml) or extxyz")
    q.add_argument("output", type=Path)
    q.set_defaults(func=convert)

    q = sub.add_parser("split", help="reproducible split into two canonical files")
    q.add_argument("source")
    q.add_argument("first", type=Path, help="output: the larger (training) part")
    q.add_argument("second", type=Path, help="output: the held-out part")
    q.add_argument("--test-fraction", type=float, default=0.2)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--by-tag", default=None, help="split by a per-frame tag, e.g. config_type")
    q.add_argument("--test-values", default=None,
                   help="comma-separated tag values that go to the held-out part")
    q.set_defaults(func=split)


def info(args) -> int:
    from fieldforce.data.atomic import refuse_overwriting, write_json
    from fieldforce.data.info import format_summary, summarize
    from fieldforce.data.io import read_frames, source_files

    refuse_overwriting({"--json summary": args.json}, source_files(args.source))
    summary = summarize(read_frames(args.source), source=str(args.source))
    print(format_summary(summary))
    if args.json:
        write_json(summary, args.json)
    return 0


def convert(args) -> int:
    from fieldforce.data.atomic import refuse_overwriting
    from fieldforce.data.io import read_frames, source_files, write_frames

    refuse_overwriting({"converted output": args.output}, source_files(args.source))
    frames = read_frames(args.source)
    write_frames(frames, args.output)
    names = sorted({k for f in frames for k in f.labels})
    print(f"wrote {len(frames)} frames to {args.output} (labels: {', '.join(names) or 'none'})")
    return 0


def split(args) -> int:
    from fieldforce.data.atomic import refuse_overwriting
    from fieldforce.data.io import read_frames, source_files, write_frames
    from fieldforce.data.splits import random_split, split_by_tag

    refuse_overwriting({"first part": args.first, "second part": args.second},
                       source_files(args.source))
    frames = read_frames(args.source)
    if args.by_tag:
        if not args.test_values:
            raise ConfigError("--by-tag needs --test-values (the tag values to hold out)")
        held, kept = split_by_tag(frames, args.by_tag, args.test_values.split(","))
    else:
        if not 0 < args.test_fraction < 1:
            raise ConfigError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
        kept, held = random_split(frames, [1 - args.test_fraction, args.test_fraction], args.seed)
    write_frames(kept, args.first)
    write_frames(held, args.second)
    print(f"wrote {len(kept)} frames to {args.first} and {len(held)} to {args.second}")
    return 0
