"""What the two ONNX exporters (query towers, image towers) share: torch's exporter called
quietly, a staging folder swapped in whole, and the ONNX Runtime session options.

An export lives in one folder per representation beside the index; a reader must see the
old folder or the new one, never half of either, so each export is written to a staging
folder next to it and renamed into place only once it has been checked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def cores() -> int:
    """CPUs this process may run on (a container's or ``taskset``'s limit, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def export_graph(
    module: Any,
    args: tuple[Any, ...],
    target: Path,
    input_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """``module`` to an ONNX file with one output, ``embedding``, batch-dynamic."""
    import torch

    # the tracer's notes (TracerWarning, opset remarks) are about the graph, not for users
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            args,
            str(target),
            input_names=list(input_names),
            output_names=["embedding"],
            dynamic_axes={**dynamic_axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


@contextlib.contextmanager
def staging(directory: Path) -> Iterator[Path]:
    """A fresh folder beside ``directory`` to write an export into; removed on the way out
    unless :func:`swap_in` moved it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def swap_in(work: Path, directory: Path) -> None:
    """Replace ``directory`` with the checked export in ``work``."""
    shutil.rmtree(directory, ignore_errors=True)
    work.replace(directory)


def session(model: Path | str | bytes, *, threads: int = 0, spin: bool = True) -> Any:
    """An ONNX Runtime CPU session of a model file (or its bytes); ``threads=0`` is ONNX
    Runtime's own choice; ``spin=False`` when other work follows each run on the same
    cores (ONNX Runtime's pool threads otherwise spin for a while after it)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # its notes (unused constants, ...) are not for users
    options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
