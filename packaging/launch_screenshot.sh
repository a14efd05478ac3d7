#!/usr/bin/env bash
# Launches PneumoViewer the way a file manager does and screenshots the window that opens:
# installs the launcher for a fresh user (from the bundle, or this checkout's venv), validates it,
# starts it with `gio launch` on a copy of the demo folder under Xvfb, waits for the window and
# for the AI to finish, and saves the screen. Used for docs/screenshots/launched-from-desktop.png.
#
# Usage: packaging/launch_screenshot.sh [OUT.png] [SECONDS-AFTER-WINDOW]
# Needs: Xvfb, xdotool, gio (libglib2.0-bin), desktop-file-validate, ImageMagick's import.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/screenshots/launched-from-desktop.png}")
settle=${2:-40}
program=dist/PneumoViewer/pneumoviewer
[ -x "$program" ] || program=.venv/bin/pneumoviewer
program=$(realpath "$program")

scratch=$(mktemp -d)
export HOME=$scratch/home XDG_DATA_HOME=$scratch/home/.local/share DISPLAY=:94
mkdir -p "$HOME" "$scratch/demo"
cp pneumoviewer/resources/demo/*.dcm "$scratch/demo/"  # a copy: the session's autosave goes beside no shipped file
Xvfb "$DISPLAY" -screen 0 1600x1000x24 -nolisten tcp -noreset >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$scratch"' EXIT
sleep 1

"$program" install-desktop
entry=$XDG_DATA_HOME/applications/pneumoviewer.desktop
desktop-file-validate "$entry"
grep '^Exec=' "$entry"
started=$(date +%s%N)
env -u QT_QPA_PLATFORM PATH=/usr/bin:/bin gio launch "$entry" "$scratch/demo"
window=""
for _ in $(seq 1200); do
    window=$(xdotool search --onlyvisible --name PneumoViewer 2>/dev/null | head -n 1 || true)
    [ -n "$window" ] && break
    sleep 0.05
done
[ -n "$window" ] || { echo "launch_screenshot.sh: no PneumoViewer window within 60 s" >&2; exit 1; }
echo "window visible $(( ($(date +%s%N) - started) / 1000000 )) ms after gio launch"
xdotool windowmove "$window" 0 0 windowsize "$window" 1600 1000
sleep "$settle"
import -window root "$out"
echo "saved $out"
kill "$(xdotool getwindowpid "$window")"  # Qt sets _NET_WM_PID
