"""One configuration mechanism: sections as dataclasses, one checker, one YAML loader.

A configuration *section* (the ``training:`` part of a training file, a model family's
``model:`` part, the keys of an MD file, the descriptor settings, a DFT backend's
settings) is a dataclass that subclasses :class:`Section`. Its fields are its keys; each
is declared with :func:`option`, which holds the default, one line of documentation and
the bounds the value must respect::

    @dataclass(kw_only=True)
    class TrainingSettings(Section):
        section: ClassVar[str] = "training"
        max_epochs: int = option(500, "upper limit on training epochs", minimum=1)

``TrainingSettings.from_dict(raw, source="train.yaml")`` fills in the defaults and checks
every key against its annotation and bounds; constructing the dataclass directly runs the
same checks. Every problem is one :class:`~fieldforce.errors.ConfigError` sentence that
names the file, the section, the key, what it got and what it expected, and suggests the
nearest valid key for a typo::

    train.yaml: unknown key 'max_epoch' in section 'training' (did you mean 'max_epochs'?);
        valid keys: batch_size, ..., max_epochs, ...
    train.yaml: key 'training.max_epochs': expected an integer >= 1, got 0
    md.yaml: missing key 'steps'; required keys: structure, model, output, steps, ensemble

:func:`check_keys` is the same key check for mappings that are not sections (field
configs dispatch on their ``type``), :func:`read_yaml` the one YAML loader, and
:meth:`Section.describe` prints a section's keys with their defaults and documentation
(``fieldforce config``). Core layer: imports nothing from fieldforce but the errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union

from fieldforce.errors import ConfigError

S = TypeVar("S", bound="Section")

#: (source, dotted prefix) of the section being checked: set by Section.from_dict so that
#: the checks in __post_init__ (which also guard direct construction) can name the file.
_CONTEXT: ContextVar[tuple[str, str]] = ContextVar("fieldforce_config_context",
                                                  default=("<config>", ""))


def option(default: Any = dataclasses.MISSING, doc: str = "", *,
           default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
           minimum: float | None = None, exclusive_minimum: float | None = None,
           maximum: float | None = None, exclusive_maximum: float | None = None,
           choices: Iterable[Any] | None = None, non_empty: bool = False,
           expected: str | None = None, check: Callable[[Any], bool] | None = None) -> Any:
    """A documented key of a :class:`Section` (a ``dataclasses.field``).

    No ``default`` (and no ``default_factory``) makes the key required. Bounds apply to
    numbers and to the items of lists of numbers; ``choices`` restricts the value to a
    set; ``non_empty`` refuses empty lists; ``check`` is any further test (True = valid)
    and ``expected`` the phrase that describes a valid value in messages (default: built
    from the annotation and bounds, e.g. "an integer >= 1").
    """
    metadata = {"doc": doc, "minimum": minimum, "exclusive_minimum": exclusive_minimum,
                "maximum": maximum, "exclusive_maximum": exclusive_maximum,
                "choices": tuple(choices) if choices is not None else None,
                "non_empty": non_empty, "expected": expected, "check": check}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    if isinstance(default, (list, dict, set)):  # a fresh copy for every instance
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# -- the checker -------------------------------------------------------------------------


def _where(source: str | os.PathLike | None) -> str:
    """The source named in messages: the given one, else that of the section (or the
    :func:`context`) being checked, else "<config>"."""
    return _CONTEXT.get()[0] if source is None else str(source)


def suggestion(value: Any, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the option nearest a misspelt ``value``, else ""."""
    close = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(raw: Mapping, allowed: Iterable[str], *, required: Iterable[str] = (),
               source: str | os.PathLike | None = None, section: str = "",
               what: str | None = None, error: type[Exception] = ConfigError) -> None:
    """Unknown keys first (a misspelt key is the likeliest reason a required one is
    missing; the nearest valid key is suggested), then missing required ones.

    ``section``: the mapping's dotted name in its file ("training"), empty for the top
    level; ``what``: a phrase naming it instead ("field of type 'static'").
    """
    allowed = list(allowed)
    where = _where(source)
    place = f" in {what}" if what else f" in section '{section}'" if section else ""
    for key in raw:
        if key not in allowed:
            raise error(f"{where}: unknown key {key!r}{place}{suggestion(key, allowed)}; "
                        f"valid keys: {', '.join(allowed)}")
    required = list(required)
    for key in required:
        if key not in raw:
            raise error(f"{where}: missing key {key!r}{place}; required keys: "
                        f"{', '.join(required)}")


def _number_phrase(kind: str, meta: Mapping) -> str:
    bounds = []
    for name, symbol in (("minimum", ">="), ("exclusive_minimum", ">"), ("maximum", "<="),
                         ("exclusive_maximum", "<")):
        if meta.get(name) is not None:
            bounds.append(f"{symbol} {meta[name]:g}")
    return f"{kind} {' and '.join(bounds)}" if bounds else kind


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _in_bounds(value: float, meta: Mapping) -> bool:
    return ((meta.get("minimum") is None or value >= meta["minimum"])
            and (meta.get("exclusive_minimum") is None or value > meta["exclusive_minimum"])
            and (meta.get("maximum") is None or value <= meta["maximum"])
            and (meta.get("exclusive_maximum") is None or value < meta["exclusive_maximum"]))


class _Invalid(Exception):
    """Internal: the value does not match; the caller words the message."""


def _convert(value: Any, hint: Any, meta: Mapping, path: str) -> Any:
    """``value`` converted to ``hint`` (int from 3.0, Path from str, ...) or _Invalid."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option_hint in options:
            with contextlib.suppress(_Invalid):
                return _convert(value, option_hint, meta, path)
        raise _Invalid
    if isinstance(hint, type) and issubclass(hint, Section):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            source, _ = _CONTEXT.get()
            return hint.from_dict(value, source=source, prefix=path)
        raise _Invalid
    if origin is Literal:
        if value in args:
            return value
        raise _Invalid
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Invalid
    if hint is int:
        if _is_number(value) and math.isfinite(value) and float(value).is_integer() \
                and _in_bounds(value, meta):
            return int(value)
        raise _Invalid
    if hint is float:
        if _is_number(value) and math.isfinite(value) and _in_bounds(value, meta):
            return float(value)
        raise _Invalid
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Invalid
    if hint is Path:
        if isinstance(value, (str, os.PathLike)):
            return Path(value).expanduser()
        raise _Invalid
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)) or (meta.get("non_empty") and not value):
            raise _Invalid
        item = args[0] if args else Any
        converted = [_convert(v, item, meta, path) for v in value]
        return tuple(converted) if (origin or hint) is tuple else converted
    if origin is dict or hint is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise _Invalid
    raise TypeError(f"config key {path!r}: unsupported annotation {hint!r}")


def _phrase(hint: Any, meta: Mapping) -> str:
    """How a valid value of ``hint`` is described in messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        parts = [_phrase(a, meta) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if isinstance(hint, type) and issubclass(hint, Section):
        return f"a mapping of {hint.section or 'settings'} keys"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if hint is bool:
        return "true or false"
    if hint is int:
        return _number_phrase("an integer", meta)
    if hint is float:
        return _number_phrase("a number", meta)
    if hint is str:
        return "a string"
    if hint is Path:
        return "a path"
    if origin in (list, tuple) or hint in (list, tuple):
        item = _phrase(args[0], meta) if args else "values"
        item = item.replace("an integer", "integers").replace("a number", "numbers")
        return ("a non-empty list of " if meta.get("non_empty") else "a list of ") + item
    if origin is dict or hint is dict:
        return "a mapping"
    return str(hint)


def check_value(value: Any, hint: Any, meta: Mapping, path: str,
                source: str | os.PathLike | None = None) -> Any:
    """``value`` checked against ``hint`` and the bounds in ``meta``, converted; else one
    ConfigError naming the source, the key ``path`` (dotted), what it got and expected."""
    try:
        converted = _convert(value, hint, meta, path)
        choices = meta.get("choices")
        if choices is not None and converted not in choices:
            raise _Invalid
        check = meta.get("check")
        if check is not None and converted is not None and not check(converted):
            raise _Invalid
    except _Invalid:
        expected = meta.get("expected")
        if expected is None:
            expected = ("one of " + ", ".join(str(c) for c in meta["choices"])
                        if meta.get("choices") is not None else _phrase(hint, meta))
        raise ConfigError(f"{_where(source)}: key {path!r}: expected {expected}, "
                          f"got {value!r}") from None
    return converted


def source() -> str:
    """The file (or description) whose configuration is being checked: see :func:`context`."""
    return _CONTEXT.get()[0]


@contextlib.contextmanager
def context(source: str | os.PathLike | None, prefix: str = "") -> Iterator[None]:
    """Checks inside this block name ``source`` (a file) and the section ``prefix`` when
    they are given none: for values checked outside a Section, e.g. a field config."""
    token = _CONTEXT.set((_where(source), prefix))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


_context = context


# -- sections ------------------------------------------------------------------------------


@dataclasses.dataclass(kw_only=True)
class Section:
    """Base of every configuration section (see the module docstring).

    Class attributes: ``section`` (its dotted name in a file, "" for a whole file) and
    ``aliases`` (old key -> current key, accepted on reading). Override :meth:`check`
    for checks that involve several keys; raise :meth:`invalid` there.
    """

    section: ClassVar[str] = ""
    aliases: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        source, prefix = _CONTEXT.get()
        if not prefix and self.section:
            prefix = self.section
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            path = f"{prefix}.{f.name}" if prefix else f.name
            with _context(source, path):
                value = check_value(getattr(self, f.name), hints[f.name], f.metadata, path,
                                    source)
            object.__setattr__(self, f.name, value)
        with _context(source, prefix):
            self.check()

    def check(self) -> None:
        """Checks that involve several keys (none by default)."""

    @staticmethod
    def where() -> tuple[str, str]:
        """(source, dotted section name) being checked: for messages raised in check()."""
        return _CONTEXT.get()

    def invalid(self, key: str, expected: str) -> ConfigError:
        """The ConfigError for key ``key`` of this section: "expected ..., got ..."."""
        source, prefix = _CONTEXT.get()
        path = f"{prefix}.{key}" if prefix else key
        return ConfigError(f"{source}: key {path!r}: expected {expected}, got "
                           f"{getattr(self, key)!r}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def required_keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]

    @classmethod
    def from_dict(cls: type[S], raw: Mapping | None, *, source: str | os.PathLike | None = None,
                  prefix: str | None = None, error: type[Exception] = ConfigError) -> S:
        """The section from a mapping (e.g. parsed YAML), defaults filled in, all checked.

        ``source``: the file (or a description of where the mapping came from) for the
        messages; ``prefix``: the section's dotted name there (default ``cls.section``).
        """
        prefix = cls.section if prefix is None else prefix
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            place = f"section '{prefix}'" if prefix else "the file"
            raise error(f"{_where(source)}: {place} must be a mapping of keys to values, "
                        f"got {raw!r}")
        values = {cls.aliases.get(k, k): v for k, v in raw.items()}
        check_keys(values, cls.keys(), required=cls.required_keys(), source=source,
                   section=prefix, error=error)
        with _context(source, prefix):
            try:
                return cls(**values)
            except ConfigError as exc:
                if error is ConfigError:
                    raise
                raise error(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-friendly values (paths as strings, nested sections as mappings)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Section):
                value = value.to_dict()
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, (list, tuple)):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def describe(cls, indent: str = "") -> str:
        """The section's keys as commented YAML: default (or "required") and doc line."""
        lines = []
        for f in dataclasses.fields(cls):
            hint = typing.get_type_hints(cls)[f.name]
            if isinstance(hint, type) and issubclass(hint, Section):
                lines.append(f"{indent}{f.name}:  # {f.metadata.get('doc', '')}")
                lines.append(hint.describe(indent + "  "))
                continue
            if f.default is not dataclasses.MISSING:
                default = _yaml_value(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                default = _yaml_value(f.default_factory())
            else:
                default = "  # required"
            doc = f.metadata.get("doc", "")
            text = f"{indent}{f.name}: {default}"
            lines.append(f"{text:<44} # {doc}" if doc and "required" not in default
                         else f"{text}{' — ' + doc if doc else ''}")
        return "\n".join(lines)


def _yaml_value(value: Any) -> str:
    import json

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Section):
        return json.dumps(value.to_dict())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value) if isinstance(value, (list, dict, str)) else repr(value)


__all__ = ["Section", "check_keys", "check_value", "context", "option", "source",
           "suggestion"]
