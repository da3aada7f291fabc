"""What the sections share: markdown tables and numbers, the task order, and pyplot on the
Agg backend (sections import ``plt`` from here, so that no figure ever needs a display)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from ofql_jax.core.tasks import TASKS  # noqa: E402

DPI = 100


def fmt(x: float | None, digits: int = 1) -> str:
    """``x`` with ``digits`` decimals; "—" for None or a non-finite number."""
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def mean_std(scores: np.ndarray) -> str:
    """``"37.7 ± 0.7"`` (population std over seeds, as results.json), or "—"."""
    if scores.size == 0:
        return "—"
    return f"{scores.mean():.1f} ± {scores.std():.1f}"


def ci(point: float, lo: float, hi: float) -> str:
    """``"75.0 [70.0, 80.0]"``: a point estimate and its interval."""
    return f"{point:.1f} [{lo:.1f}, {hi:.1f}]"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A markdown table (a "|" inside a cell becomes "/")."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return out


def duration(seconds: float | None) -> str:
    """``"1 h 50 min"`` or ``"3 min 07 s"``."""
    if seconds is None:
        return "unknown"
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def safe_name(name: str) -> str:
    """``name`` made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def task_order(tasks: Iterable[str]) -> list[str]:
    """The distinct tasks in the order of ``ofql_jax.core.tasks.TASKS``, unknown ones last."""
    known = list(TASKS)
    return sorted(set(tasks), key=lambda t: (known.index(t) if t in known else len(known), t))


def steps_tick(value: float, _position=None) -> str:
    """An axis tick of gradient steps: ``"20k"``."""
    return f"{value / 1000:g}k" if value >= 1000 and value % 1000 == 0 else f"{value:g}"


def steps_axis(ax: Any) -> None:
    """Gradient steps on the x axis, ticked ``"20k"``."""
    ax.xaxis.set_major_formatter(FuncFormatter(steps_tick))


def save_figure(fig: Any, path: Path) -> None:
    """Lay out, write (PNG at ``DPI``) and close a pyplot figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
