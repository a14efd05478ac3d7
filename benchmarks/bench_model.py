"""CPU latency of the model pipeline: stages at several input sizes, Grad-CAM, what speeds the network
up (ONNX Runtime, channels-last, inference mode, threads, a lighter encoder) and `predict` throughput.

    nice -n 10 .venv/bin/python benchmarks/bench_model.py [--quick] [--model WEIGHTS]

Goals on a 2-core machine (issue #4): <= 0.4 s per image at a 512² input without TTA, Grad-CAM <= 1 s.
The shipped model reads 256² inputs; the U-Net is fully convolutional, so the same weights are timed
at 256, 512 and 1024. Figures from a shared, busy machine are noisy: the ratios are measured side by
side in one run (variants timed in turns), which keeps them fair.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.cam import grad_cam
from pneumoviewer.model.card import ModelCard, NetworkConfig
from pneumoviewer.model.checkpoint import load_checkpoint, save_checkpoint
from pneumoviewer.model.inference import Predictor
from pneumoviewer.model.network import build_network, select_device
from pneumoviewer.model.onnx_runtime import try_onnx_network
from pneumoviewer.model.postprocess import InferenceSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import (
    DATA,
    Figure,
    add_runner_arguments,
    chosen_model,
    interleaved_medians,
    median_seconds,
    report,
    run_command,
)

LATENCY_GOAL_SECONDS = 0.4  # per 512² image, without TTA
CAM_GOAL_SECONDS = 1.0
GOAL_SIZE = 512


def model_at_size(source: Path | None, size: int, folder: Path) -> Path:
    """A checkpoint of the same weights whose card asks for `size`² inputs (random weights if no source)."""
    if source is None:
        torch.manual_seed(0)
        network, card = build_network(NetworkConfig()).eval(), ModelCard(network=NetworkConfig())
    else:
        network, card = load_checkpoint(source)
    card.network = NetworkConfig.from_dict({**card.network.to_dict(), "input_size": size})
    weights, _ = save_checkpoint(folder / f"model-{size}", network, card, half=False)
    return weights


def bench_latency(source: Path | None, sizes: list[int], image: Path, repeats: int, folder: Path) -> list[Figure]:
    """Per-image seconds by input size as shipped (Predictor: ONNX Runtime network, default threads);
    the prediction, the prediction with flip TTA and Grad-CAM are timed in turns."""
    load_seconds = median_seconds(lambda: load_radiograph(image), repeats)
    pixels = load_radiograph(image).pixels
    shipped = int(load_checkpoint(source)[1].network.input_size) if source else NetworkConfig().input_size
    figures = []
    for size in sizes:
        predictor = Predictor(model_at_size(source, size, folder))
        plain, tta = (InferenceSettings.from_dict({**predictor.settings.to_dict(), "tta": flip}) for flip in (False, True))
        stage_runs: list[dict[str, float]] = []
        seconds = interleaved_medians({
            "predict": lambda p=predictor, s=plain, runs=stage_runs: runs.append(p.predict(pixels, settings=s).timings),
            "predict with TTA": lambda p=predictor, s=tta: p.predict(pixels, settings=s),
            "Grad-CAM": lambda p=predictor: grad_cam(p, pixels),
        }, repeats)
        stages = {stage: statistics.median(run[stage] for run in stage_runs) for stage in stage_runs[0]}
        label = f"{size}² input{' (shipped)' if size == shipped else ''}"
        breakdown = ", ".join(f"{name} {value * 1e3:.0f}" for name, value in [("load", load_seconds), *stages.items()])
        figures.append(Figure(f"model latency per image, {label}, no TTA", load_seconds + seconds["predict"], "s",
                              LATENCY_GOAL_SECONDS if size == GOAL_SIZE else None,
                              f"ms: {breakdown}; network on {predictor.runtime}, {torch.get_num_threads()} thread(s)"))
        figures.append(Figure(f"  Grad-CAM, {label}", seconds["Grad-CAM"], "s",
                              CAM_GOAL_SECONDS if size <= GOAL_SIZE else None,
                              "eager torch (needs gradients), decoder block 0"))
        if size in (shipped, GOAL_SIZE):
            default = " (the model card's default)" if predictor.settings.tta else ""
            figures.append(Figure(f"  with flip TTA{default}, {label}", load_seconds + seconds["predict with TTA"], "s",
                                  None, "two network passes; timed in turns with the above"))
    return figures


def bench_runtimes(weights: Path, size: int, repeats: int, thread_counts: list[int]) -> list[Figure]:
    """Network-only seconds for one image, each way of running it on a CPU, timed in turns."""
    network, card = load_checkpoint(weights)
    channels_last = load_checkpoint(weights)[0].to(memory_format=torch.channels_last)
    batch = torch.randn(1, 1, size, size)
    shipped_threads = torch.get_num_threads()
    figures = []
    onnx_by_threads = {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        # The shipped path: exported once to the user's cache, session with `threads` threads.
        onnx = try_onnx_network(network, weights, card.network.to_dict(), (1, size, size))

        def under(context, net=network):
            def call() -> None:
                with context():
                    net(batch)
            return call

        actions = {"autograd on": lambda: network(batch), "no_grad": under(torch.no_grad),
                   "inference_mode": under(torch.inference_mode),
                   "inference_mode + channels-last": under(torch.inference_mode, channels_last)}
        if onnx is not None:
            actions["ONNX Runtime"] = lambda onnx=onnx: onnx(batch)
        seconds = interleaved_medians(actions, repeats)
        print(f"\nNetwork only, {size}², one image, {threads} thread(s), median seconds (timed in turns):")
        for name, value in seconds.items():
            print(f"  {name:<36} {value:.3f}")
        onnx_by_threads[threads] = seconds.get("ONNX Runtime")
        if threads != shipped_threads:
            continue
        note = f"{size}², {threads} thread(s) as shipped, same run"
        eager = seconds["inference_mode + channels-last"]
        if onnx is not None:
            figures.append(Figure("  ONNX Runtime speed-up over eager torch (channels-last)",
                                  eager / seconds["ONNX Runtime"], "x", None,
                                  f"{seconds['ONNX Runtime'] * 1e3:.0f} vs {eager * 1e3:.0f} ms; {note}"))
        figures += [
            Figure("  channels-last speed-up (eager torch)", seconds["inference_mode"] / eager, "x", None, note),
            Figure("  inference_mode speed-up over no_grad", seconds["no_grad"] / seconds["inference_mode"], "x",
                   None, note),
            Figure("  no_grad speed-up over autograd on", seconds["autograd on"] / seconds["no_grad"], "x", None, note),
        ]
    torch.set_num_threads(shipped_threads)
    if len(onnx_by_threads) == 2 and None not in onnx_by_threads.values():
        one, two = (onnx_by_threads[count] for count in sorted(onnx_by_threads))
        figures.append(Figure("  2 threads speed-up over 1 (ONNX Runtime)", one / two, "x", None,
                              f"{one * 1e3:.0f} vs {two * 1e3:.0f} ms; shipped: all cores but one"))
    return figures


def bench_encoders(size: int, repeats: int) -> list[Figure]:
    """The shipped architecture against heavier U-Nets (random weights), eager torch, timed in turns."""
    candidates = {
        "ours: mobilenet_v2, decoder 96-8": NetworkConfig(),
        "mobilenet_v2, smp decoder 256-16": NetworkConfig(decoder_channels=(256, 128, 64, 32, 16)),
        "resnet34, smp decoder 256-16": NetworkConfig(encoder="resnet34", decoder_channels=(256, 128, 64, 32, 16)),
    }
    batch = torch.randn(1, 1, size, size)
    networks = {name: build_network(config).eval().to(memory_format=torch.channels_last)
                for name, config in candidates.items()}

    def forward(network: torch.nn.Module):
        def call() -> None:
            with torch.inference_mode():
                network(batch)
        return call

    seconds = interleaved_medians({name: forward(network) for name, network in networks.items()}, repeats)
    print(f"\nEncoders, network only, {size}², eager torch channels-last, median seconds (timed in turns):")
    for name, value in seconds.items():
        parameters = sum(p.numel() for p in networks[name].parameters()) / 1e6
        print(f"  {name:<36} {value:.3f}   {parameters:.1f} M parameters")
    ours, resnet = seconds["ours: mobilenet_v2, decoder 96-8"], seconds["resnet34, smp decoder 256-16"]
    wide = seconds["mobilenet_v2, smp decoder 256-16"]
    return [Figure("  lighter network: speed-up over a resnet34 U-Net", resnet / ours, "x", None,
                   f"{ours * 1e3:.0f} vs {resnet * 1e3:.0f} ms (smp's default decoder: {wide * 1e3:.0f} ms); "
                   f"{size}², eager torch, same run")]


def bench_batching(weights: Path, images: list[Path], repeats: int) -> list[Figure]:
    """predict_batch with 4 images per network call against 1, on decoded images (no I/O)."""
    predictor = Predictor(weights)
    pixels = [load_radiograph(path).pixels for path in images]
    seconds = interleaved_medians({size: lambda size=size: predictor.predict_batch(pixels, batch_size=size)
                                   for size in (1, 4)}, repeats)
    return [Figure("  batching: 4 images per network call, speed-up over 1", seconds[1] / seconds[4], "x", None,
                   f"{len(pixels) / seconds[1]:.1f} vs {len(pixels) / seconds[4]:.1f} images/s; shipped: 1")]


def bench_predict_command(weights: Path, images: list[Path], folder: Path) -> list[Figure]:
    """`pneumoviewer predict` end to end in a fresh process, as a user runs it over a folder."""
    out = folder / "predictions.csv"
    command = [sys.executable, "-m", "pneumoviewer", "predict", *map(str, images), "--out", str(out),
               "--model", str(weights)]
    seconds, peak_mb = run_command(command)
    print(f"\n`pneumoviewer predict` over {len(images)} SIIM DICOMs: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
    return [Figure(f"`pneumoviewer predict` throughput, {len(images)} SIIM DICOMs", len(images) / seconds,
                   "images/s", None, f"{seconds:.1f} s end to end incl. start-up and model load; the card's settings"
                   f"{' (flip TTA on)' if load_checkpoint(weights)[1].settings.get('tta') else ''}"),
            Figure("  peak memory (RSS) of that `pneumoviewer predict`", peak_mb, "MB")]


def run(quick: bool, model: Path | None) -> list[Figure]:
    repeats = 3 if quick else 7
    dicoms = sorted((DATA / "siim" / "dicom-images").rglob("*.dcm"))
    select_device()
    print(f"model: {model or 'default architecture, random weights'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s) after select_device()")
    with tempfile.TemporaryDirectory(prefix="pneumoviewer-bench-model-") as scratch:
        folder = Path(scratch)
        weights = model or model_at_size(None, NetworkConfig().input_size, folder)
        figures = bench_latency(model, [256, 512] if quick else [256, 512, 1024], dicoms[0], repeats, folder)
        if not quick:  # side-by-side ratios need repeats to mean anything: the quick run leaves them out
            figures += bench_runtimes(model_at_size(model, GOAL_SIZE, folder), GOAL_SIZE, repeats, [1, 2])
            figures += bench_encoders(GOAL_SIZE, repeats)
            figures += bench_batching(weights, dicoms[:16], 3)
        figures += bench_predict_command(weights, dicoms[: 12 if quick else 200], folder)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    return report(run(args.quick, chosen_model(args.model)), args)


if __name__ == "__main__":
    sys.exit(main())
