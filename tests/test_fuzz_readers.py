"""Fuzzing the readers: damaged extxyz and spec files either read correctly or raise the
package's own one-sentence error, never another exception and never a partial output."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldforce.cli.main import main
from fieldforce.data.io import read_frames, write_frames
from fieldforce.datasets import load_water
from fieldforce.errors import FieldforceError

SPEC = """path: data.xyz
keys: {energy: energy, dipole: dipole, polarizability: polarizability}
units: {energy: eV, dipole: e*angstrom, polarizability: e*angstrom^2/V}
"""
TOKENS = ["nan", "inf", "-1e400", "abc", "", "1e5", "0", "Xx", "T", "F", '"', "=", "3.0.1",
          "Lattice=", "Properties=species:S:1", "-", "1e-3", "100000000", "0x10", "\t"]
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> bytes:
    frames = load_water()
    chosen = [frames[0], frames[310], frames[-1]]  # a monomer, a dimer, a trimer, labelled
    path = tmp_path_factory.mktemp("fuzz") / "original.xyz"
    write_frames(chosen, path)
    return path.read_bytes()


def read_or_own_error(path: Path) -> None:
    """The property every damaged file must have."""
    try:
        frames = read_frames(path)
    except FieldforceError as exc:
        assert "\n" not in str(exc).strip(), f"a multi-line message: {exc}"
        return
    assert frames, "read without error but no frames"


def convert_all_or_nothing(source: Path, tmp: Path) -> None:
    out = tmp / "converted.xyz"
    out.unlink(missing_ok=True)
    code = main(["data", "convert", str(source), str(out)])
    leftovers = [p for p in os.listdir(tmp) if p.startswith(".converted")]
    assert not leftovers, f"temporary files left: {leftovers}"
    if code == 0:
        assert read_frames(out)  # a complete, readable output
    else:
        assert code == 2 and not out.exists()


def frame_ends(text: str) -> list[int]:
    """Character offsets where each frame of a well-formed extxyz text ends."""
    lines, ends, i, offset = text.splitlines(keepends=True), [], 0, 0
    while i < len(lines):
        n = int(lines[i])
        offset += sum(len(line) for line in lines[i:i + n + 2])
        ends.append(offset)
        i += n + 2
    return ends


@FUZZ
@given(cut=st.floats(0, 1))
def test_truncated_files(original, tmp_path, cut):
    """A file cut inside a frame is an error naming it, never fewer frames read quietly;
    a file cut between frames reads the frames before the cut."""
    text = original.decode()
    kept = text[:int(cut * len(text))]
    path = tmp_path / "data.xyz"
    path.write_text(kept)
    # a frame is complete when the cut removed at most the whitespace after it
    complete = [e for e in frame_ends(text) if len(text[:e].rstrip()) <= len(kept)]
    at_boundary = (len(kept.rstrip()) <= len(text[:complete[-1]].rstrip()) if complete
                   else kept.strip() == "")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frames = read_frames(path)
    except FieldforceError as exc:
        assert not (at_boundary and complete), f"a cut between frames was refused: {exc}"
        return
    # a cut inside the last number of the last line cannot be told from a file without
    # a final line end: it reads, with a warning that says so
    warned = any("may be truncated" in str(w.message) for w in caught)
    assert at_boundary or warned, f"a cut inside a frame read quietly as {len(frames)} frames"
    assert len(frames) == len(complete) + (not at_boundary)


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=6))
def test_byte_flips(original, tmp_path, flips, capsys):
    data = bytearray(original)
    for where, byte in flips:
        data[int(where * len(data))] = byte
    path = tmp_path / "data.xyz"
    path.write_bytes(bytes(data))
    read_or_own_error(path)
    convert_all_or_nothing(path, tmp_path)
    capsys.readouterr()


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=3))
def test_byte_flips_in_compressed_files(original, tmp_path, flips):
    import gzip

    data = bytearray(gzip.compress(original))
    for where, byte in flips:
        data[int(where * len(data))] = byte
    path = tmp_path / "data.xyz.gz"
    path.write_bytes(bytes(data))
    read_or_own_error(path)


@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                st.one_of(st.sampled_from(TOKENS), st.text(max_size=6))),
                      min_size=1, max_size=4))
def test_field_edits(original, tmp_path, edits, capsys):
    tokens = original.decode().split(" ")
    for where, token in edits:
        tokens[int(where * len(tokens))] = token
    path = tmp_path / "data.xyz"
    path.write_text(" ".join(tokens))
    read_or_own_error(path)
    convert_all_or_nothing(path, tmp_path)
    capsys.readouterr()


@FUZZ
@given(cut=st.floats(0, 1), edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                                     st.sampled_from(TOKENS + ["\n", ":",
                                                                              "{", "}"])),
                                           max_size=3))
def test_damaged_specs(original, tmp_path, cut, edits):
    (tmp_path / "data.xyz").write_bytes(original)
    text = list(SPEC[:max(1, int(cut * len(SPEC)))] if cut < 1 else SPEC)
    for where, token in edits:
        text[int(where * len(text))] = token
    spec = tmp_path / "spec.yaml"
    spec.write_text("".join(text))
    read_or_own_error(spec)
