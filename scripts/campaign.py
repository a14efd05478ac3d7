#!/usr/bin/env python3
"""The training campaign's command line (see pneumoviewer/training/campaign.py and docs/model.md).

  scripts/campaign.py start            run the protocol in the background (setsid, nice 19)
  scripts/campaign.py run              the same in the foreground
  scripts/campaign.py status [--json]  which run, epoch/step, s/step, last figures, ETA
  scripts/campaign.py stop             SIGTERM the campaign (its last checkpoint stays)
  scripts/campaign.py pack --size 384 --codec jpeg90 --out FILE   the compact image pack for a GPU

Every command takes --root (default $PNEUMOVIEWER_CAMPAIGN_ROOT or ../campaign beside the checkout) and --protocol
(default docs/campaign.toml).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pneumoviewer.training import campaign  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="campaign.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "start", "status", "stop", "pack"))
    parser.add_argument("--root", type=Path, default=campaign.default_root())
    parser.add_argument("--protocol", type=Path, default=campaign.DEFAULT_PROTOCOL)
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument("--size", type=int, default=384, help="pack: input size")
    parser.add_argument("--codec", default="png", help="pack: png (lossless) or jpeg<quality>, e.g. jpeg90")
    parser.add_argument("--out", type=Path, help="pack: the .npz to write")
    parser.add_argument("--data", type=Path, help="pack: data folder holding siim/ and siim-extra/ "
                        "(default: the protocol's [paths] data)")
    args = parser.parse_args(argv)
    root, protocol = args.root.resolve(), args.protocol.resolve()
    try:
        if args.command == "run":
            return campaign.run_campaign(protocol, root)
        if args.command == "start":
            print(f"campaign started in the background (pid {campaign.start_in_background(protocol, root)}); "
                  f"output in {root / 'campaign.out'}, log in {root / campaign.LOG_FILE}")
            return 0
        if args.command == "stop":
            print(campaign.stop_campaign(root))
            return 0
        if args.command == "status":
            report = campaign.status(protocol, root)
            print(json.dumps(report, indent=2) if args.json else campaign.format_status(report))
            return 0
        return _pack(args, root, protocol)
    except campaign.CampaignBusy as busy:
        print(f"campaign.py: {busy}", file=sys.stderr)
        return 1


def _pack(args: argparse.Namespace, root: Path, protocol: Path) -> int:
    import tomllib

    from pneumoviewer.training import data
    from pneumoviewer.training.pack import write_pack

    if args.out is None:
        print("campaign.py: pack needs --out FILE", file=sys.stderr)
        return 2
    data_dir = args.data or Path(tomllib.loads(protocol.read_text())["paths"]["data"])
    images = data.load_labelled_images(data_dir / "siim" / "train-rle.csv", data_dir / "siim", "primary")
    images += data.load_labelled_images(data_dir / "siim-extra" / "train-rle.csv", data_dir / "siim-extra", "extra")
    path = write_pack(args.out, images, args.size, root / "cache", codec=args.codec)
    print(f"{path}: {len(images)} images at {args.size} px ({args.codec}), {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
