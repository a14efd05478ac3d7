"""PyInstaller runtime hook of the CPU bundle: torchvision imports without its compiled operators.

The CPU bundle is built on a CPU-only torch, and the only torchvision wheel for it on PyPI is built
against CUDA torch: its `_C.so` needs libtorch_cuda.so, so the bundle leaves it out. torchvision's
Python code (the MobileNetV2 class smp's encoder derives from) runs without it, but its
`_meta_registrations` registers shapes for `torchvision::nms`/`qnms` whatever happens, which fails
when no operator library defined them. Defining their two schemas first (no kernels: the app never
calls them) lets `import torchvision` succeed. Done when torchvision is first imported, on the AI
thread, not at start-up: importing torch here would delay the window.
"""

import importlib.abc
import sys

_KEEP = []  # the Library object: its definitions last as long as it does


class _DefineTorchvisionOperators(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            import torch

            library = torch.library.Library("torchvision", "DEF")
            library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _KEEP.append(library)
        return None  # the normal finders import it


sys.meta_path.insert(0, _DefineTorchvisionOperators())
