#!/usr/bin/env bash
# Builds the one-folder bundle dist/PneumoViewer with PyInstaller, then smoke-tests the bundled
# binary with --self-test in a bare environment (no display, no venv on PATH) and prints its size
# and start-up times.
#
# Usage: packaging/build.sh [SELF-TEST OPTIONS]   e.g. packaging/build.sh --model other.safetensors
# Needs the checkout's .venv (scripts/install.sh dev): the CUDA bundle dist/PneumoViewer. With
# PYTHON=.venv-cpu/bin/python (packaging/cpu_venv.sh: a CPU-only torch) it builds the CPU bundle
# dist/PneumoViewer-CPU instead. The build runs at low priority (NICE=19).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
bundle=dist/$("$python" -c 'from importlib.metadata import version
print("PneumoViewer-CPU" if "+cpu" in version("torch") else "PneumoViewer")')

if [ ! -f pneumoviewer/resources/models/default.safetensors ] && [ $# -eq 0 ]; then
    echo "build.sh: pneumoviewer/resources/models/default.safetensors: the bundled model is missing;" \
         "add it, or pass --model PATH to smoke-test with another checkpoint" >&2
    exit 1
fi
"$python" -m PyInstaller --version >/dev/null 2>&1 || "$python" -m pip install -q "pyinstaller>=6"
if [ -n "$(git status --porcelain -- pneumoviewer 2>/dev/null)" ]; then
    echo "build.sh: warning: uncommitted changes in pneumoviewer/ (code or resources) go into this bundle" \
         "(build releases from a clean checkout)" >&2
fi

started=$(date +%s)
PYTHONPATH="$PWD" nice -n "${NICE:-19}" "$python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/pneumoviewer.spec
echo "built $bundle in $(( $(date +%s) - started )) s:" \
     "$(du -sh "$bundle" | cut -f1), $(find "$bundle" -type f | wc -l) files"

# The smoke test sees none of the build machine's Python: a bare environment, a fresh HOME.
bare_home=$(mktemp -d)
trap 'rm -rf "$bare_home"' EXIT
bare=(env -i HOME="$bare_home" PATH=/usr/bin:/bin LANG=C.UTF-8)
seconds() {  # wall-clock seconds of one command, output discarded (portable: no GNU date needed)
    "$python" -c 'import subprocess, sys, time; t = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); print(f"{time.perf_counter() - t:.2f}")' "$@"
}

"${bare[@]}" "$bundle/pneumoviewer" --self-test "$@"
echo "start-up: --version $(seconds "${bare[@]}" "$bundle/pneumoviewer" --version) s (bootloader + Python, no torch)"
echo "start-up: --self-test $(seconds "${bare[@]}" "$bundle/pneumoviewer" --self-test "$@") s (second run, warm file cache)"
if command -v Xvfb >/dev/null && command -v xdotool >/dev/null; then  # launch -> visible window, as a launcher does
    "$python" benchmarks/bench_startup.py --quick --command "$bundle/pneumoviewer" | grep "^Xvfb" | sed 's/^/start-up: /'
fi
