"""CPU latency of the model pipeline: per-stage times at several input sizes, variants, throughput, memory.

    nice -n 10 .venv/bin/python benchmarks/bench_model.py [--quick] [--model M] [--image DICOM]

Prints medians over a few repeats. Targets on a 2-core machine: <= 0.4 s per image at a 512^2 input
without TTA, Grad-CAM <= 1 s. Without --model it uses the bundled model, or, if none is installed yet,
the default architecture with random weights (timing depends on the architecture, not the weights).
Figures from a shared, busy machine are noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.batch import ImageFile, predict_files
from pneumoviewer.model.cam import grad_cam
from pneumoviewer.model.checkpoint import ModelCard, load_checkpoint, save_checkpoint
from pneumoviewer.model.inference import Predictor
from pneumoviewer.model.network import NetworkConfig, build_network, select_device
from pneumoviewer.model.postprocess import InferenceSettings
from pneumoviewer.paths import default_model_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    action()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_rss_mb() -> float:
    """Highest resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def model_at_size(source: Path | None, size: int, folder: Path) -> Path:
    """A checkpoint of the same weights whose card asks for `size`^2 inputs (the U-Net is fully convolutional)."""
    if source is None:
        torch.manual_seed(0)
        network, card = build_network(NetworkConfig()).eval(), ModelCard(network=NetworkConfig())
    else:
        network, card = load_checkpoint(source)
    card.network = NetworkConfig.from_dict({**card.network.to_dict(), "input_size": size})
    weights, _ = save_checkpoint(folder / f"model-{size}", network, card)
    return weights


def stage_table(predictor: Predictor, pixels: np.ndarray, repeats: int) -> dict[str, float]:
    predictor.predict(pixels)
    runs = [predictor.predict(pixels).timings for _ in range(repeats)]
    stages = {stage: statistics.median(run[stage] for run in runs) for stage in runs[0]}
    stages["total"] = sum(stages.values())
    stages["cam"] = median_seconds(lambda: grad_cam(predictor, pixels), max(1, repeats // 2))
    return stages


def network_variants(weights: Path, size: int, repeats: int) -> dict[str, float]:
    """Network-only seconds per image for the ways of running it on a CPU."""
    network, _ = load_checkpoint(weights)
    batch = torch.randn(1, 1, size, size)
    results: dict[str, float] = {}
    with torch.inference_mode():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            network = network.to(memory_format=torch.contiguous_format)
            results[f"torch, {threads} thread(s)"] = median_seconds(lambda net=network: net(batch), repeats)
            network = network.to(memory_format=torch.channels_last)
            results[f"torch channels-last, {threads} thread(s)"] = median_seconds(lambda net=network: net(batch), repeats)
    try:
        import onnxruntime
    except ImportError:
        return results
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        torch.onnx.export(network.to(memory_format=torch.contiguous_format), (batch,), buffer, dynamo=False,
                          input_names=["image"], output_names=["mask", "presence"], opset_version=17)
        results["(ONNX export, once)"] = time.perf_counter() - started
    for threads in (1, 2):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        feed = {"image": batch.numpy()}
        results[f"ONNX Runtime, {threads} thread(s)"] = median_seconds(lambda run=session.run, feed=feed: run(None, feed), repeats)
    return results


def throughput(predictor: Predictor, paths: list[Path]) -> dict[str, float]:
    """Images/s for the CLI loop (load overlapped with inference) and for batched network calls."""
    files = [ImageFile(path, None) for path in paths]
    settings = predictor.settings
    started = time.perf_counter()
    count = sum(1 for _ in predict_files(predictor, files, settings))
    results = {"predict loop incl. DICOM decode": count / (time.perf_counter() - started)}
    pixels = [load_radiograph(path).pixels for path in paths]
    for batch_size in (1, 4):
        started = time.perf_counter()
        predictor.predict_batch(pixels, batch_size=batch_size)
        results[f"predict_batch, batch size {batch_size} (decoded)"] = len(pixels) / (time.perf_counter() - started)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes (a minute or so)")
    parser.add_argument("--model", type=Path, help="checkpoint to time (default: bundled, else random weights)")
    parser.add_argument("--image", type=Path, help="radiograph to time (default: a SIIM DICOM)")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    sizes = (256, 512) if args.quick else (256, 512, 1024)
    source = args.model or (default_model_path() if default_model_path().exists() else None)
    dicoms = sorted((DATA / "siim" / "dicom-images").rglob("*.dcm"))[: 4 if args.quick else 8]
    image_path = args.image or dicoms[0]
    select_device()
    print(f"model: {source or 'default architecture, random weights'}; image: {image_path.name}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s) after select_device()")
    load_seconds = median_seconds(lambda: load_radiograph(image_path), repeats)
    pixels = load_radiograph(image_path).pixels
    print(f"\nload (DICOM decode + window) {load_seconds:.3f} s for {pixels.shape[1]}x{pixels.shape[0]}")

    with tempfile.TemporaryDirectory() as folder:
        print("\nPer-image seconds by input size (as shipped: Predictor, network on ONNX Runtime if installed):")
        print(f"{'input':>6} {'model load':>10} {'pre':>7} {'network':>8} {'post':>7} {'total':>7} {'TTA total':>9} "
              f"{'Grad-CAM':>9} {'peak RSS so far':>16}")
        for size in sizes:
            started = time.perf_counter()
            predictor = Predictor(model_at_size(source, size, Path(folder)))
            model_load = time.perf_counter() - started
            stages = stage_table(predictor, pixels, repeats)
            tta = InferenceSettings.from_dict({**predictor.settings.to_dict(), "tta": True})
            tta_total = median_seconds(lambda p=predictor, s=tta: p.predict(pixels, settings=s), max(1, repeats // 2))
            print(f"{size:>6} {model_load:>10.3f} {stages['pre']:>7.3f} {stages['network']:>8.3f} "
                  f"{stages['post']:>7.3f} {stages['total']:>7.3f} {tta_total:>9.3f} {stages['cam']:>9.3f} "
                  f"{peak_rss_mb():>13.0f} MB")

        weights = model_at_size(source, 512, Path(folder))
        print("\nNetwork only, 512^2, one image (median seconds):")
        threads = torch.get_num_threads()
        for name, seconds in network_variants(weights, 512, repeats).items():
            print(f"  {name:<40} {seconds:.3f}")
        torch.set_num_threads(threads)

        predictor = Predictor(weights)
        print(f"\nThroughput at 512^2 on {len(dicoms)} SIIM DICOMs (images/s):")
        for name, rate in throughput(predictor, dicoms).items():
            print(f"  {name:<40} {rate:.2f}")
    print(f"\npeak memory (RSS) {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
