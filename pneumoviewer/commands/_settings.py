"""The options that `predict` and `evaluate` share: `--tta`, `--setting KEY=VALUE`, `--score-unvalidated`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pneumoviewer.model.postprocess import InferenceSettings


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tta", action="store_true", help="also predict the mirrored image and average (2x slower)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the model card's inference settings, e.g. mask_threshold=0.3 "
                        "(presence_threshold, presence_min_pixels, mask_threshold, min_lesion_area_px, "
                        "presence_head_weight, tta); repeatable")
    parser.add_argument("--score-unvalidated", action="store_true",
                        help="also score images the AI is not validated for (not a chest radiograph: other "
                        "modalities than CR/DX/DR, other body parts); without it they are reported and skipped")


def setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """This run's overrides of the card's settings. Raises ValueError for a malformed `--setting`."""
    overrides = parse_setting_overrides(args.setting)
    if args.tta:
        overrides["tta"] = True
    return overrides


def request_settings(card_settings: Mapping[str, Any], overrides: Mapping[str, Any]) -> InferenceSettings:
    """The model card's settings with this run's overrides. Raises ValueError naming a bad one."""
    # Imported here, not above: a cluster's client checks the settings without loading the model's runtime.
    from pneumoviewer.model.postprocess import InferenceSettings

    return InferenceSettings.from_dict({**card_settings, **overrides})


def parse_setting_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings from `--setting` to a dict of JSON-ish values (true/false, numbers)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"--setting expects KEY=VALUE, got {pair!r}")
        lowered = text.strip().lower()
        overrides[key.strip()] = {"true": True, "false": False}.get(lowered, text.strip())
    return overrides
