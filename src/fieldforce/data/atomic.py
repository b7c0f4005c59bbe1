"""Safe output: write to a temporary name beside the target, then rename into place; and
never write over an input.

A crash or an error leaves either the old file or none, never half of a new one.
:func:`refuse_overwriting` stops a command before it starts when one of its outputs is
one of its inputs (``fieldforce data split IN IN OUT`` would otherwise replace its data).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    ``suffix`` (default: ``path``'s own, so writers that look at the extension, such as
    matplotlib or ASE, pick the right format) ends the temporary name. The file gets
    the permissions a plain ``open()`` would give (mkstemp makes it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".gz") else path.suffix
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_stale_temporaries(path: str | Path) -> None:
    """Delete the temporary files a killed writer of ``path`` left beside it (a SIGKILL
    leaves no chance to clean up); the next write of ``path`` calls this."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*"):
        stale.unlink(missing_ok=True)


def write_json(data, path: str | Path, indent: int = 1) -> Path:
    """``data`` as JSON in ``path``, atomically."""
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(data, indent=indent) + "\n")
    return Path(path)


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """A matplotlib figure as PNG in ``path``, atomically (the caller closes it)."""
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(path)


def finish_figure(fig, path: str | Path, ax=None, title: str = "", dpi: int = 150,
                  legend_outside: bool = False) -> Path:
    """The last steps of an analysis plot: ``title`` and a small legend on ``ax`` (when
    given; ``legend_outside``: right of the axes, for legends that would hide data), a
    tight layout, the PNG written atomically, the figure closed."""
    import matplotlib.pyplot as plt

    if ax is not None:
        if title:
            ax.set_title(title)
        if legend_outside:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      borderaxespad=0.0)
        else:
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (links and relative paths resolved)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.expanduser().resolve() == b.expanduser().resolve()


def refuse_overwriting(outputs: dict[str, str | Path | None],
                       inputs: dict[str, str | Path | None]) -> None:
    """A ConfigError when an output is an input, or two outputs are the same file.

    ``outputs`` and ``inputs`` map what each path is ("the training part", "--json") to
    the path (None: not given).
    """
    from fieldforce.errors import ConfigError

    outs = [(k, Path(v)) for k, v in outputs.items() if v is not None]
    ins = [(k, Path(v)) for k, v in inputs.items() if v is not None]
    for name, out in outs:
        for what, path in ins:
            if same_path(out, path):
                raise ConfigError(f"{out}: the {name} would overwrite the {what} ({path}); "
                                  "choose another output path")
    for k, (name, out) in enumerate(outs):
        for other, path in outs[k + 1:]:
            if same_path(out, path):
                raise ConfigError(f"{out}: the {name} and the {other} are the same file; "
                                  "give two different paths")
