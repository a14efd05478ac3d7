#!/usr/bin/env bash
# Creates .venv beside the checkout and installs PneumoViewer into it (editable), with the
# Debian libraries Qt needs, dicom3tools (dciodvfy: the tests validate every DICOM object we
# write with it), Orthanc with its DICOMweb plugin (the PACS tests and benchmark start their own,
# see tests/orthanc_server.py), poppler-utils (pdftotext: the tests read the case reports' PDFs back),
# chromium-headless-shell (a test renders the evaluation report's HTML page) and xdotool (the start-up
# benchmark waits for the window with it), when they are missing and we may install them.
# Usage: scripts/install.sh [EXTRA]   e.g. scripts/install.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

debian_packages=(libegl1 libgl1 libglib2.0-0 libfontconfig1 libxkbcommon0 libdbus-1-3 dicom3tools orthanc orthanc-dicomweb
                 poppler-utils chromium-headless-shell xdotool)
missing=()
for pkg in "${debian_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "Installing Debian packages (Qt's libraries, dicom3tools, Orthanc): ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        # Debian starts a system-wide Orthanc (DICOM port open on every address) after installing it:
        # the tests run their own in a private network namespace, so that one is stopped and disabled.
        if [[ " ${missing[*]} " == *" orthanc "* ]]; then
            if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
                systemctl disable --now orthanc.service >/dev/null 2>&1 || true
            elif [ -x /etc/init.d/orthanc ]; then
                /etc/init.d/orthanc stop >/dev/null 2>&1 || true
                update-rc.d orthanc disable >/dev/null 2>&1 || true
            fi
        fi
    else
        echo "Qt (and the tests: dicom3tools, Orthanc) need these Debian packages: sudo apt-get install ${missing[*]}" >&2
    fi
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
spec="."
[ -n "$extra" ] && spec=".[$extra]"
.venv/bin/python -m pip install -q -e "$spec"
echo "Installed: $(.venv/bin/pneumoviewer --version)"
