#!/usr/bin/env python3
"""The training campaign's command line (see pneumoviewer/training/campaign.py and docs/model.md).

  scripts/campaign.py start            run the protocol in the background (setsid, nice 19)
  scripts/campaign.py run              the same in the foreground
  scripts/campaign.py status [--json]  which run, epoch/step, s/step, last figures, ETA
  scripts/campaign.py stop             SIGTERM the campaign (its last checkpoint stays)
  scripts/campaign.py park             copy each run's checkpoint (finished: network + record) into campaign-state/
                                     to commit, so that a new machine continues it (`start` restores from there)
  scripts/campaign.py pack --size 384 --codec jpeg90 --out FILE   the compact image pack for a GPU
  scripts/campaign.py ship --out DIR [--runs NAME ...] [--baseline V1_EVALUATION_JSON] [--ship-run NAME]
                                     the candidate model from the folds' out-of-fold predictions
                                     (pneumoviewer/training/ship.py; docs/model.md, "Shipping v2")

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
    parser.add_argument("command", choices=("run", "start", "status", "stop", "park", "pack", "ship"))
    parser.add_argument("--root", type=Path, default=campaign.default_root())
    parser.add_argument("--protocol", type=Path, default=campaign.DEFAULT_PROTOCOL)
    parser.add_argument("--parking", type=Path, default=campaign.DEFAULT_PARKING,
                        help="park, run, start: the committed folder of parked runs (default: campaign-state/)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    parser.add_argument("--size", type=int, default=384, help="pack: input size")
    parser.add_argument("--codec", default="png", help="pack: png (lossless) or jpeg<quality>, e.g. jpeg90")
    parser.add_argument("--out", type=Path, help="pack: the .npz to write; ship: the folder for the candidate")
    parser.add_argument("--runs", nargs="+", metavar="RUN", help="ship: run names (under ROOT/runs) or folders "
                        "holding oof.npz (default: the folds of the protocol's first recipe)")
    parser.add_argument("--baseline", type=Path, metavar="EVALUATION_JSON", help="ship: `pneumoviewer evaluate "
                        "--ids pneumoviewer/resources/models/default.json --json ...` of v1, to compare on the images it held out")
    parser.add_argument("--ship-run", metavar="RUN", help="ship: the fold whose network ships (default: the one "
                        "with the best held-out AUC on its own fold)")
    parser.add_argument("--latency-images", nargs="*", type=Path, metavar="IMAGE",
                        help="ship: images to time the candidate on (default: 3 of ../shared/data/unlabelled)")
    parser.add_argument("--quick", action="store_true", help="ship: the quick tuning grid (tests)")
    parser.add_argument("--triage-score", choices=("auto", "gate", "presence-head"), default="auto",
                        help="ship: what the worklist sorts and flags by: the challenge call's gate or the presence "
                        "head's probability (default auto: whichever has the higher out-of-fold AUC)")
    parser.add_argument("--data", type=Path, help="pack: data folder holding siim/ and siim-extra/ "
                        "(default: the protocol's [paths] data)")
    args = parser.parse_args(argv)
    root, protocol = args.root.resolve(), args.protocol.resolve()
    try:
        if args.command == "run":
            return campaign.run_campaign(protocol, root, parking=args.parking.resolve())
        if args.command == "start":
            pid = campaign.start_in_background(protocol, root, args.parking.resolve())
            print(f"campaign started in the background (pid {pid}); "
                  f"output in {root / 'campaign.out'}, log in {root / campaign.LOG_FILE}")
            return 0
        if args.command == "stop":
            print(campaign.stop_campaign(root))
            return 0
        if args.command == "park":
            written = campaign.park(protocol, root, args.parking.resolve())
            size = sum(path.stat().st_size for path in written) / 1e6
            print("\n".join(str(path) for path in written) or "nothing to park: no run has started")
            print(f"{len(written)} files, {size:.1f} MB: commit {args.parking} so that another machine continues")
            return 0
        if args.command == "status":
            report = campaign.status(protocol, root)
            print(json.dumps(report, indent=2) if args.json else campaign.format_status(report))
            return 0
        if args.command == "ship":
            return _ship(args, root, protocol)
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


def _ship(args: argparse.Namespace, root: Path, protocol: Path) -> int:
    from pneumoviewer.training.ship import ship_candidate

    if args.out is None:
        print("campaign.py: ship needs --out DIR", file=sys.stderr)
        return 2
    runs_of_protocol = campaign.read_protocol(protocol)
    names = args.runs or [run.name for run in campaign.folds_of(runs_of_protocol, runs_of_protocol[0])]

    def folder(name: str) -> Path:
        return Path(name) if Path(name).is_dir() else root / "runs" / name

    runs = [folder(name) for name in names]
    missing = [str(run) for run in runs if not (run / "oof.npz").is_file()]
    if missing:
        print(f"campaign.py: no out-of-fold predictions (oof.npz) yet in: {', '.join(missing)}; a campaign start "
              "rebuilds them from the networks once no run is left to train", file=sys.stderr)
        return 1
    latency_images = args.latency_images
    if latency_images is None:
        latency_images = sorted((campaign.REPO_ROOT.parent / "shared" / "data" / "unlabelled").glob("*.dcm"))[:3]
    report = ship_candidate(runs, args.out, args.baseline, folder(args.ship_run) if args.ship_run else None,
                            latency_images, quick=args.quick,
                            triage_by_presence_head={"auto": None, "gate": False, "presence-head": True}[args.triage_score])
    print((args.out / "ship-report.md").read_text())
    verdict = report.get("against_baseline", {}).get("beats_baseline")
    print(f"candidate: {args.out / 'candidate.safetensors'} (+ .json); "
          + ("it beats v1: copy both over pneumoviewer/resources/models/default.* and update docs/model.md" if verdict
             else "no comparison with v1 (--baseline)" if verdict is None else "it does not beat v1: keep v1"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
