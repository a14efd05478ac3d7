"""PyInstaller runtime hook: the bundle computes on the CPU only.

It carries just the CUDA libraries torch needs to import, not cuDNN's kernels or cuSOLVER, so
a visible GPU would make torch pick CUDA and then fail in the first convolution. Hiding the
GPUs before torch loads keeps every machine on the CPU path (GPU users: install with pip).
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
