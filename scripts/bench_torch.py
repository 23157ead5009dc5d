#!/usr/bin/env python3
"""PyTorch CPU baseline for `bge-m3 bench`: an encoder with BGE-M3's sizes, timed on the same shapes.

The model is a stack of torch.nn.TransformerEncoderLayer (post-LayerNorm, GELU, eps 1e-5) with
XLM-RoBERTa-large's sizes (24 layers, hidden 1024, 16 heads, intermediate 4096) behind word and
position embeddings of the real sizes (vocab 250002, 8194 positions) and an embedding LayerNorm;
random weights, eval mode, no grad. That is the same arithmetic as the tfjs forward (the three
heads cost next to nothing). Inputs are random token ids without padding.

    python3 scripts/bench_torch.py --shapes 1x128,8x128 [--reps 3] [--threads 2] [--layers 24]
    python3 scripts/bench_torch.py --serve      # reads one shape per line on stdin, answers one JSON line each

Each result is one JSON line: {"shape", "median_s", "tokens_per_s", "peak_rss_mb", "runs_s", "threads", "torch"}.
Needs Debian's python3-torch with libopenblas0-pthread (without OpenBLAS it falls back to the
reference BLAS and is ~20x slower). OMP_WAIT_POLICY=PASSIVE is set before torch is imported so that
torch's OpenMP threads and OpenBLAS's threads do not spin against each other on a small machine.
"""
import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the environment is set)
from torch import nn  # noqa: E402


def build(layers, hidden, heads, intermediate, vocab, positions):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        d_model=hidden, nhead=heads, dim_feedforward=intermediate, dropout=0.0,
        activation="gelu", layer_norm_eps=1e-5, batch_first=True, norm_first=False,
    )
    model = nn.ModuleDict({
        "word": nn.Embedding(vocab, hidden),
        "pos": nn.Embedding(positions, hidden),
        "ln": nn.LayerNorm(hidden, eps=1e-5),
        "encoder": nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False),
    })
    return model.eval()


def forward(model, ids):
    t = ids.shape[1]
    pos = torch.arange(2, t + 2).unsqueeze(0)
    x = model["ln"](model["word"](ids) + model["pos"](pos))
    return model["encoder"](x)


def loaded_blas():
    """The BLAS library torch ended up with (Debian picks it through alternatives), from /proc/self/maps."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    except OSError:
        return "unknown"
    names = ", ".join(sorted(os.path.basename(p) for p in libs)) or "unknown"
    return names + openblas_core(libs)


def openblas_core(libs):
    """OpenBLAS's kernel family (e.g. SkylakeX = AVX-512, Haswell = AVX2): it sets the baseline's speed,
    and OPENBLAS_CORETYPE overrides it, so the bench says which one ran."""
    for path in libs:
        if "openblas" not in os.path.basename(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
        forced = os.environ.get("OPENBLAS_CORETYPE")
        return f" (OpenBLAS core {core}{', OPENBLAS_CORETYPE=' + forced if forced else ''})"
    return ""


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) on Linux
    except OSError:
        pass


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_shape(model, shape, reps, vocab, warmup):
    b, t = (int(v) for v in shape.lower().split("x"))
    gen = torch.Generator().manual_seed(b * 100003 + t)
    ids = torch.randint(3, vocab, (b, t), generator=gen)
    reset_peak_rss()
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            forward(model, ids)
        for _ in range(reps):
            t0 = time.perf_counter()
            forward(model, ids)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "shape": f"{b}x{t}", "median_s": med, "tokens_per_s": b * t / med, "peak_rss_mb": peak_rss_mb(),
        "runs_s": times, "threads": torch.get_num_threads(), "torch": torch.__version__,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="1x128", help="comma-separated BxT list")
    ap.add_argument("--serve", action="store_true", help="read shapes (one per line, optionally 'BxT reps') from stdin")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=250002)
    ap.add_argument("--positions", type=int, default=8194)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = build(args.layers, args.hidden, args.heads, args.intermediate, args.vocab, args.positions)
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": loaded_blas()}), flush=True)
    if args.serve:
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            reps = int(parts[1]) if len(parts) > 1 else args.reps
            warmup = int(parts[2]) if len(parts) > 2 else args.warmup
            print(json.dumps(run_shape(model, parts[0], reps, args.vocab, warmup)), flush=True)
    else:
        for shape in args.shapes.split(","):
            print(json.dumps(run_shape(model, shape, args.reps, args.vocab, args.warmup)), flush=True)


if __name__ == "__main__":
    main()
