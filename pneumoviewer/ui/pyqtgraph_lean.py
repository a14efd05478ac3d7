"""pyqtgraph, imported without cuda-python: a tenth of a second or more of the window's start-up.

pyqtgraph's RawImageWidget imports `cuda.bindings` when it is installed (PyPI's CUDA torch brings
it), to draw CuPy arrays on the GPU; its import searches the disk for CUDA libraries. The app never
hands pyqtgraph a GPU array, so the import is hidden while pyqtgraph loads (it then keeps its
CPU path) and allowed again right after, for torch. Measured in docs/benchmarks.md (start-up).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

_CUDA_PYTHON = "cuda.bindings"


def _import_pyqtgraph() -> ModuleType:
    hidden = _CUDA_PYTHON not in sys.modules
    if hidden:
        sys.modules[_CUDA_PYTHON] = None  # type: ignore[assignment]  # None makes its import fail at once
    try:
        import pyqtgraph
    finally:
        if hidden and sys.modules.get(_CUDA_PYTHON, ModuleType("absent")) is None:
            del sys.modules[_CUDA_PYTHON]
    return pyqtgraph


if TYPE_CHECKING:
    import pyqtgraph as pg
else:
    pg = _import_pyqtgraph()
