"""The one configuration mechanism: sections as dataclasses, one checker, one message form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from fieldforce.cli.main import main
from fieldforce.config import Section, check_keys, option
from fieldforce.config_files import read_mapping, yaml_loader
from fieldforce.errors import BackendError, ConfigError


@dataclass(kw_only=True)
class Inner(Section):
    section: ClassVar[str] = "inner"
    width: float = option(0.5, "a width, Å", exclusive_minimum=0)


@dataclass(kw_only=True)
class Outer(Section):
    section: ClassVar[str] = "outer"
    aliases: ClassVar[dict[str, str]] = {"old_steps": "steps"}
    path: Path = option(doc="required path")
    steps: int = option(10, "a count", minimum=1)
    rate: float = option(1e-3, "a rate", minimum=0, maximum=1)
    flag: bool = option(False, "a switch")
    mode: str = option("fast", "a choice", choices=("fast", "slow"))
    sizes: list[int] = option([4, 4], "positive sizes", non_empty=True, minimum=1)
    limit: float | None = option(None, "optional bound", exclusive_minimum=0)
    inner: Inner = option(default_factory=Inner, doc="a nested section")

    def check(self) -> None:
        if self.mode == "slow" and self.steps < 5:
            raise self.invalid("steps", "at least 5 steps in slow mode")


def test_defaults_conversions_and_nesting():
    s = Outer.from_dict({"path": "~/x.yaml", "steps": 3.0, "rate": 1, "inner": {"width": 2}},
                        source="f.yaml")
    assert s.path == Path("~/x.yaml").expanduser() and s.steps == 3 and type(s.steps) is int
    assert s.rate == 1.0 and type(s.rate) is float and s.inner.width == 2.0
    assert s.sizes == [4, 4] and s.limit is None and not s.flag
    assert s.to_dict()["inner"] == {"width": 2.0} and isinstance(s.to_dict()["path"], str)
    assert Outer.from_dict({"path": "p", "old_steps": 7}).steps == 7  # an accepted alias
    other = Outer.from_dict({"path": "p"})
    other.sizes.append(1)
    assert Outer.from_dict({"path": "p"}).sizes == [4, 4]  # defaults are not shared


@pytest.mark.parametrize("raw, message", [
    ({"path": "p", "step": 3},
     r"^f.yaml: unknown key 'step' in section 'outer' \(did you mean 'steps'\?\); valid keys: "
     r"path, steps, rate"),
    ({"steps": 3}, r"^f.yaml: missing key 'path' in section 'outer'; required keys: path$"),
    ({"path": "p", "steps": 0}, r"^f.yaml: key 'outer.steps': expected an integer >= 1, got 0$"),
    ({"path": "p", "steps": 2.5}, r"key 'outer.steps': expected an integer >= 1, got 2.5"),
    ({"path": "p", "steps": True}, r"key 'outer.steps': expected an integer >= 1, got True"),
    ({"path": "p", "rate": 2}, r"key 'outer.rate': expected a number >= 0 and <= 1, got 2"),
    ({"path": "p", "rate": float("nan")}, r"key 'outer.rate': expected a number"),
    ({"path": "p", "flag": "yes"}, r"key 'outer.flag': expected true or false, got 'yes'"),
    ({"path": "p", "mode": "quick"}, r"key 'outer.mode': expected one of fast, slow"),
    ({"path": "p", "sizes": []}, r"key 'outer.sizes': expected a non-empty list of integers"),
    ({"path": "p", "sizes": [2, 0]}, r"key 'outer.sizes': expected a non-empty list"),
    ({"path": "p", "limit": 0}, r"key 'outer.limit': expected a number > 0 or null, got 0"),
    ({"path": 3}, r"key 'outer.path': expected a path, got 3"),
    ({"path": "p", "inner": {"widht": 1}},
     r"unknown key 'widht' in section 'outer.inner' \(did you mean 'width'\?\)"),
    ({"path": "p", "inner": {"width": -1}}, r"key 'outer.inner.width': expected a number > 0"),
    ({"path": "p", "inner": 3}, r"key 'outer.inner': expected a mapping of inner keys, got 3"),
    ({"path": "p", "mode": "slow", "steps": 2},
     r"key 'outer.steps': expected at least 5 steps in slow mode, got 2"),
])
def test_one_message_names_file_section_key_got_and_expected(raw, message):
    with pytest.raises(ConfigError, match=message):
        Outer.from_dict(raw, source="f.yaml")


def test_direct_construction_is_checked_and_errors_can_be_other_classes():
    with pytest.raises(ConfigError, match="key 'outer.steps'"):
        Outer(path=Path("p"), steps=-1)
    with pytest.raises(BackendError, match="code settings: unknown key 'x'"):
        Outer.from_dict({"path": "p", "x": 1}, source="code settings", error=BackendError)
    with pytest.raises(ConfigError, match="^s: unknown key 'b' in field of type 't'"):
        check_keys({"b": 1}, ["a"], source="s", what="field of type 't'")


def test_read_mapping(tmp_path):
    (tmp_path / "ok.yaml").write_text("a: 1\nrate: 1e-3\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    (tmp_path / "empty.yaml").write_text("")
    # YAML 1.2 numbers: PyYAML alone reads 1e-3 as the string "1e-3"
    assert read_mapping(tmp_path / "ok.yaml", "thing") == {"a": 1, "rate": 0.001}
    assert read_mapping(tmp_path / "empty.yaml", "thing") == {}
    with pytest.raises(ConfigError, match="list.yaml: a thing must be a mapping"):
        read_mapping(tmp_path / "list.yaml", "thing")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        read_mapping(tmp_path / "bad.yaml", "thing")
    with pytest.raises(ConfigError, match="missing.yaml: cannot read thing"):
        read_mapping(tmp_path / "missing.yaml", "thing")


@pytest.mark.parametrize("section, cls", [
    ("training", "fieldforce.training.config:TrainingSettings"),
    ("descriptor", "fieldforce.descriptors.settings:DescriptorSettings"),
    ("pyscf", "fieldforce.reference.pyscf_backend:PySCFSettings"),
])
def test_fieldforce_config_prints_the_defaults_the_checker_uses(section, cls, capsys):
    import importlib

    module, name = cls.split(":")
    settings = getattr(importlib.import_module(module), name)
    assert main(["config", section]) == 0
    printed = yaml.load(capsys.readouterr().out, Loader=yaml_loader())
    printed = printed.get(settings.section, printed) if settings.section else printed
    assert printed == settings().to_dict()


def test_one_set_of_descriptor_defaults():
    """Every family's descriptor section is DescriptorSettings with its own defaults."""
    from fieldforce.descriptors import DescriptorSettings
    from fieldforce.models import build_model

    defaults = DescriptorSettings().to_dict()
    for family in ("response", "latent"):
        model = build_model({"family": family, "species": [1, 8]})
        assert model.config["descriptor"] == defaults
        assert model.backbone.features.settings.cutoff == defaults["cutoff"]


def test_data_select_keeps_the_frames_it_names_and_refuses_what_none_has():
    """``data.select`` filters by info values before the split; a misspelt key or value is
    one error naming what the frames have, not a silently smaller training set."""
    from fieldforce.datasets import load_metal
    from fieldforce.training import load_config
    from fieldforce.training.sources import select_frames, split_data

    def config(select):
        return load_config({"data": {"train": "fieldforce:metal", "select": select,
                                     "test_fraction": 0.2},
                            "model": {"family": "response"}, "output": "run"})

    every = load_metal()
    train, valid, test = split_data(config({"system": "Cu(100)"}))
    assert len(train) + len(valid) + len(test) == len(load_metal("Cu(100)"))
    assert all(f.atoms.info["system"] == "Cu(100)" for f in train + valid + test)
    both = split_data(config({"system": ["Cu(100)", "Cu(111)"],
                              "config_type": "adatom_path"}))
    kept = [f for part in both for f in part]
    assert len(kept) == sum(f.atoms.info["system"] in ("Cu(100)", "Cu(111)")
                            and f.atoms.info["config_type"] == "adatom_path" for f in every)
    # numbers match numeric info entries (the thick slabs' layer count)
    thick = select_frames(every, {"layers": 7}, "fieldforce:metal")
    assert len(thick) == 2 and all(int(f.atoms.info["layers"]) == 7 for f in thick)
    with pytest.raises(ConfigError, match=r"select.*'sytem'.*info keys: .*system"):
        split_data(config({"sytem": "Cu(100)"}))
    with pytest.raises(ConfigError, match=r"select.system: no frame has system = 'Cu\(110\)'; "
                                          r"present: Cu\(100\), Cu\(111\)"):
        split_data(config({"system": "Cu(110)"}))
    with pytest.raises(ConfigError, match="data.select"):
        config({"system": {"nested": 1}})


def test_data_test_select_holds_out_the_frames_it_names():
    """``data.test_select`` puts the frames it names in the test set (never trained on),
    and ``test_fraction`` then draws more from the rest; booleans select boolean tags."""
    from fieldforce.datasets import load_metal
    from fieldforce.training import load_config
    from fieldforce.training.sources import split_data

    def config(test_select, fraction):
        return load_config({"data": {"train": "fieldforce:metal", "test_select": test_select,
                                     "test_fraction": fraction},
                            "model": {"family": "response"}, "output": "run"})

    every = load_metal()
    relaxed = [f for f in every if f.atoms.info.get("relaxed") is True]
    assert relaxed  # the shipped set has DFT-relaxed W states
    train, valid, test = split_data(config({"relaxed": True}, 0.0))
    assert len(test) == len(relaxed) and all(f.atoms.info["relaxed"] is True for f in test)
    assert not any(f.atoms.info.get("relaxed") for f in train + valid)
    assert len(train) + len(valid) + len(test) == len(every)
    train, valid, more = split_data(config({"relaxed": True}, 0.2))
    assert len(more) > len(test) and all(f.atoms.info.get("relaxed") for f in more[:len(test)])
    assert not any(f.atoms.info.get("relaxed") for f in train + valid)
    with pytest.raises(ConfigError, match=r"data.test_select.system: no frame has system = "
                                          r"'W\(100\)'"):
        split_data(config({"system": "W(100)"}, 0.0))
    every_system = {"system": ["Cu(100)", "Cu(111)", "W(110)"]}
    with pytest.raises(ConfigError, match=rf"{len(every)} frames leave the validation set "
                                          rf"empty .*test_select taking {len(every)}"):
        split_data(config(every_system, 0.0))


@pytest.mark.parametrize("path", sorted(
    (Path(__file__).parent.parent / "examples").glob("train_*.yaml")), ids=lambda p: p.name)
def test_every_example_training_config_is_valid_and_splits_its_shipped_data(path):
    """The example configs README and BENCHMARKS name pass the config checks, and those on
    shipped data split it into non-empty training and validation sets (a renamed key or
    a selection no frame matches would otherwise surface only when a user runs them)."""
    from fieldforce.training import load_config
    from fieldforce.training.sources import split_data

    config = load_config(path)
    if config["data"]["train"].startswith("fieldforce:"):
        train, valid, test = split_data(config)
        assert train and valid
        assert bool(test) == (config["data"]["test_fraction"] > 0
                              or bool(config["data"].get("test_select")))
