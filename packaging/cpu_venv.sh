#!/usr/bin/env bash
# Creates .venv-cpu, the build environment of the CPU bundle: `PYTHON=.venv-cpu/bin/python packaging/build.sh`
# then builds dist/PneumoViewer-CPU (no CUDA library at all) instead of the CUDA bundle.
#
# It holds torch's CPU-only build (TORCH_CPU, default torch==2.13.0+cpu: the one this machine's wheelhouse,
# /opt/wheels, serves; PyTorch's own index serves every release: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu),
# torchvision of the same release without its dependencies (PyPI serves only its CUDA build; the bundle leaves
# out its compiled operators, see rthook_torchvision_cpu.py), the app's other dependencies and PyInstaller.
# Usage: packaging/cpu_venv.sh      (VENV=path to put it elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv-cpu}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "${TORCH_CPU:-torch==2.13.0+cpu}"
"$venv/bin/python" -m pip install -q --no-deps "${TORCHVISION:-torchvision==0.28.0}"
# The app's other requirements, as pyproject.toml lists them (torch and torchvision are pinned there to the CUDA pair).
mapfile -t requirements < <("$venv/bin/python" -c 'import tomllib
for requirement in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if not requirement.startswith(("torch=", "torchvision=")):
        print(requirement)')
"$venv/bin/python" -m pip install -q "${requirements[@]}" "pyinstaller>=6"
"$venv/bin/python" -c 'import torch; print("CPU bundle environment:", torch.__version__, "CUDA:", torch.version.cuda)'
