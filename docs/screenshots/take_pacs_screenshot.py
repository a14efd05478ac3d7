"""Render the README's "Open from PACS" screenshot: the real dialog, querying a real Orthanc.

    Xvfb :99 -screen 0 1680x1050x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/take_pacs_screenshot.py [--out DIR]

As the PACS tests do (tests/orthanc_server.py), the script moves into a private network namespace
(root, or run it under `unshare -rn`), starts a throw-away Orthanc there, uploads the demo studies, and
saves `pacs-query.png` beside this script once the dialog lists them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNG (default: beside this script)")
    args = parser.parse_args()
    from orthanc_server import PASSWORD, USER, OrthancServer, enter_private_network

    problem = enter_private_network()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="pneumoviewer-pacs-shot-"))
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")  # the node list of this shot only
    server = OrthancServer(scratch / "orthanc").start()
    try:
        from pneumoviewer.paths import demo_dir
        from pneumoviewer.ui.app import application

        server.upload(sorted(demo_dir().glob("*.dcm")))
        application()
        from take_screenshots import settle, wait_until  # type: ignore[import-not-found]

        from pneumoviewer.pacs.nodes import PacsNode, save_nodes
        from pneumoviewer.ui.pacs_dialogs import OpenFromPacsDialog

        save_nodes([PacsNode("Radiology PACS", "dicomweb", url=server.dicomweb_url, username=USER,
                             password=PASSWORD)])
        dialog = OpenFromPacsDialog(scratch / "cache")
        dialog.resize(1180, 560)
        dialog.date_from.setText("19000101")
        dialog.date_to.setText("20251231")
        dialog.show()
        dialog.run_query()
        wait_until(lambda: dialog.results.rowCount() > 0 and dialog.worker is None)
        dialog.results.selectRow(0)
        settle()
        args.out.mkdir(parents=True, exist_ok=True)
        dialog.grab().save(str(args.out / "pacs-query.png"))
        print(args.out / "pacs-query.png")
        dialog.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
