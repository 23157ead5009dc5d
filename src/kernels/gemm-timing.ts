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

/**
 * GFLOP/s of one thread running 10 independent f32x4 FMAs per iteration: the 128-bit peak of a core;
 * null without relaxed SIMD. Wall time, best of `reps` runs after two warm-up calls (the first call
 * runs V8's baseline code): a busy machine only makes a run slower, so the best one is the core's.
 * (CPU time is no better a clock here: it counted the process's other threads and read half the peak.)
 */
export function fmaPeakGflops(reps = 7): number | null {
  const module = kernelSupport().module;
  if (!module) return null;
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const peak = (new WebAssembly.Instance(module, { env: { memory } }).exports as { peak: (n: number) => number }).peak;
  const n = 5_000_000; // 400 MFLOP, ~8 ms at peak
  for (let i = 0; i < 2; i++) peak(n); // compile, tier up, warm up
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    peak(n);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return (n * 80) / best / 1e9;
}

export interface GemmShapeResult {
  /** e.g. "128x1024->4096": tokens × in -> out */
  shape: string;
  flop: number;
  /** Median GFLOP/s of linearRowMajor (x [N, in] · Wᵀ + b, one kernel call). */
  kernel?: number;
  /** The kernel's GFLOP per CPU-second summed over its threads: per-core efficiency, robust to a busy machine. */
  kernelPerCpuS?: number;
  /** The same for XNNPACK's matMul. */
  xnnpackPerCpuS: number;
  /** Median GFLOP/s of XNNPACK's matMul alone (W · xᵀ, as the fallback forward calls it). */
  xnnpack: number;
  /** Median GFLOP/s of the whole fallback Linear: transpose, XNNPACK matMul, transpose, add bias. */
  xnnpackLinear: number;
}

/** The Linear shapes of a BGE-M3 layer (hidden 1024, intermediate 4096) at `tokens` tokens. */
export function forwardGemmShapes(tokens: readonly number[], hidden = 1024, intermediate = 4096): Array<[number, number, number]> {
  return tokens.flatMap((n) => [[n, hidden, hidden], [n, hidden, intermediate], [n, intermediate, hidden]] as Array<[number, number, number]>);
}

/** Median wall seconds and median CPU seconds (all threads of the process) of `reps` calls. */
function timeIt(f: () => tf.Tensor, reps: number): { wall: number; cpu: number } {
  for (let i = 0; i < 2; i++) f().dispose();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const y = f();
    // wasm runs ops synchronously; reading the output back would time a copy out of the heap (for
    // a [128, 4096] output, a third of the GEMM). Asynchronous backends need the read to finish.
    if (tf.getBackend() !== 'wasm') y.dataSync();
    wall.push((performance.now() - t0) / 1000);
    const d = process.cpuUsage(c0);
    cpu.push((d.user + d.system) / 1e6);
    y.dispose();
  }
  return { wall: median(wall), cpu: median(cpu) };
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
        const k = kernelStatus().active ? timeIt(() => linearRowMajor(x, w, b)!, reps) : undefined;
        setKernelEnabled(false);
        const xT = tf.transpose(x) as tf.Tensor2D;
        const xn = timeIt(() => tf.matMul(w, xT), reps);
        xT.dispose();
        const xnnpackLinear = flop / timeIt(() => tf.tidy(() => tf.add(tf.transpose(tf.matMul(w, tf.transpose(x))), b)), reps).wall / 1e9;
        out.push({
          shape: `${N}x${inDim}->${outDim}`, flop, xnnpackLinear,
          kernel: k && flop / k.wall / 1e9, kernelPerCpuS: k && flop / k.cpu / 1e9,
          xnnpack: flop / xn.wall / 1e9, xnnpackPerCpuS: flop / xn.cpu / 1e9,
        });
      } finally {
        tf.dispose([x, w, b]);
      }
    }
  } finally {
    setKernelEnabled(wasOn);
  }
  return out;
}
