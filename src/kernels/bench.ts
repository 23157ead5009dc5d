/**
 * Measurements for `bge-m3 bench`: the 128-bit FMA peak of one thread (a register-only loop of
 * f32x4.relaxed_madd), and the forward's Linear shapes through the kernel and through the XNNPACK
 * path the forward takes without it, in the same run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { kernelSupport } from './feature.js';
import { kernelStatus, linearRowMajor, setKernelEnabled, kernelEnabled } from './gemm.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** GFLOP/s of one thread running 10 independent f32x4 FMAs per iteration; null without relaxed SIMD. */
export function fmaPeakGflops(reps = 5): number | null {
  const module = kernelSupport().module;
  if (!module) return null;
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const peak = (new WebAssembly.Instance(module, { env: { memory } }).exports as { peak: (n: number) => number }).peak;
  const n = 2_000_000; // 160 MFLOP, ~3 ms at peak
  peak(n); // compile and warm up
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    peak(n);
    runs.push((performance.now() - t0) / 1000);
  }
  return (n * 80) / Math.min(...runs) / 1e9; // the best run: the peak is what the core can do undisturbed
}

export interface GemmShapeResult {
  /** e.g. "128x1024->4096": tokens × in -> out */
  shape: string;
  flop: number;
  /** Median GFLOP/s of linearRowMajor (x [N, in] · Wᵀ + b, one kernel call). */
  kernel?: number;
  /** Median GFLOP/s of XNNPACK's matMul alone (W · xᵀ, as the fallback forward calls it). */
  xnnpack: number;
  /** Median GFLOP/s of the whole fallback Linear: transpose, XNNPACK matMul, transpose, add bias. */
  xnnpackLinear: number;
}

/** The Linear shapes of a BGE-M3 layer (hidden 1024, intermediate 4096) at `tokens` tokens. */
export function forwardGemmShapes(tokens: readonly number[], hidden = 1024, intermediate = 4096): Array<[number, number, number]> {
  return tokens.flatMap((n) => [[n, hidden, hidden], [n, hidden, intermediate], [n, intermediate, hidden]] as Array<[number, number, number]>);
}

function timeIt(f: () => tf.Tensor, reps: number): number {
  for (let i = 0; i < 2; i++) f().dispose();
  const runs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const y = f();
    y.dataSync(); // synchronous on wasm anyway; keeps the timing honest elsewhere
    runs.push((performance.now() - t0) / 1000);
    y.dispose();
  }
  return median(runs);
}

/** Times each [N, in] -> out Linear through the kernel (when it runs) and through XNNPACK. */
export function timeGemmShapes(shapes: ReadonlyArray<[number, number, number]>, reps = 5): GemmShapeResult[] {
  const wasOn = kernelEnabled();
  const out: GemmShapeResult[] = [];
  try {
    for (const [N, inDim, outDim] of shapes) {
      const flop = 2 * N * inDim * outDim;
      const x = tf.randomUniform([N, inDim], -1, 1, 'float32', 1) as tf.Tensor2D;
      const w = tf.randomUniform([outDim, inDim], -0.05, 0.05, 'float32', 2) as tf.Tensor2D;
      const b = tf.randomUniform([outDim], -0.1, 0.1, 'float32', 3) as tf.Tensor1D;
      try {
        setKernelEnabled(true);
        const kernel = kernelStatus().active ? flop / timeIt(() => linearRowMajor(x, w, b)!, reps) / 1e9 : undefined;
        setKernelEnabled(false);
        const xT = tf.transpose(x) as tf.Tensor2D;
        const xnnpack = flop / timeIt(() => tf.matMul(w, xT), reps) / 1e9;
        xT.dispose();
        const xnnpackLinear = flop / timeIt(() => tf.tidy(() => tf.add(tf.transpose(tf.matMul(w, tf.transpose(x))), b)), reps) / 1e9;
        out.push({ shape: `${N}x${inDim}->${outDim}`, flop, kernel, xnnpack, xnnpackLinear });
      } finally {
        tf.dispose([x, w, b]);
      }
    }
  } finally {
    setKernelEnabled(wasOn);
  }
  return out;
}
