/**
 * The FMA GEMM kernel (src/kernels) against a float64 JS reference: odd shapes (M, N, K not
 * multiples of the 4×8 tile, 1×1, K = 1, K large enough that B is packed in several chunks), every
 * layout (B as [K, N] or [N, K], C as [M, N] or [N, M]), with and without bias; the Linear entry points
 * (one Linear, and several of one x with x packed once);
 * switching the kernel off; bad input; memory. Max errors are printed.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/backend.js';
import { GEMM_KERNEL, LINEARS_KERNEL, kernelMatMul, kernelStatus, linearRowMajor, linearsRowMajor, setKernelEnabled } from '../../src/kernels/index.js';
import { linear } from '../../src/model/ops.js';
import { heapStats } from '../../src/runtime/heap-guard.js';
import { ErrorLog } from '../helpers/reference.js';

/** Seeded values: small integers (sums exact in float32) or uniform in [−1, 1). */
function values(n: number, seed: number, ints: boolean): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ints ? (s % 9) - 4 : (s / 2 ** 31) - 1;
  }
  return out;
}

/** C = A·B (+ bias) in float64, C as [M, N]; also Σ|a·b| per element (the scale of rounding errors). */
function reference(A: Float32Array, B: Float32Array, M: number, K: number, N: number, bT: boolean, bias: Float32Array | null, cT: boolean) {
  const c = new Float64Array(M * N);
  const mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = A[m * K + k]! * (bT ? B[n * K + k]! : B[k * N + n]!);
        s += p;
        a += Math.abs(p);
      }
      const b = bias ? bias[cT ? m : n]! : 0;
      c[m * N + n] = s + b;
      mag[m * N + n] = a + Math.abs(b);
    }
  }
  return { c, mag };
}

/** erf in float64: its Taylor series for |x| < 2.5, else 1 − erfc by its continued fraction (both ~1e-15). */
function erf64(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 2.5) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 100; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = z; // erfc(z) = e^(−z²)/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), evaluated from the tail
    for (let k = 80; k >= 1; k--) f = z + k / 2 / f;
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

const gelu64 = (x: number): number => 0.5 * x * (1 + erf64(x / Math.SQRT2));

const SHAPES: Array<[number, number, number]> = [ // M, K, N
  [1, 1, 1], [1, 1, 9], [5, 1, 3], [4, 8, 8], [8, 16, 16], [7, 13, 9], [33, 70, 17], [3, 1500, 5], [6, 4099, 300],
];
const LAYOUTS = [
  { bT: false, cT: false }, { bT: true, cT: false }, { bT: false, cT: true }, { bT: true, cT: true },
];

beforeAll(async () => {
  await useBackend('wasm', { threads: 2 });
});
afterAll(() => setKernelEnabled(true));

describe('GEMM kernel against a float64 reference', () => {
  it('runs here: relaxed SIMD and the threaded wasm backend', () => {
    const s = kernelStatus();
    console.log(`kernel path: ${s.path}`);
    expect(s.active, s.path).toBe(true);
    expect(s.threads).toBe(2);
  });

  for (const ints of [true, false]) {
    it(`every layout and odd shape, ${ints ? 'integer values (exact)' : 'uniform values'}`, () => {
      const log = new ErrorLog(`GEMM kernel, ${ints ? 'integer' : 'uniform'} values`);
      for (const [M, K, N] of SHAPES) {
        for (const { bT, cT } of LAYOUTS) {
          for (const withBias of [false, true]) {
            const A = values(M * K, M + 7 * K, ints);
            const B = values(K * N, N + 3 * K + 1, ints);
            const biasV = withBias ? values(cT ? M : N, 11 + M + N, ints) : null;
            const { c, mag } = reference(A, B, M, K, N, bT, biasV, cT);
            const got = tf.tidy(() => {
              const inputs: tf.NamedTensorMap = {
                a: tf.tensor2d(A, [M, K]), b: tf.tensor2d(B, bT ? [N, K] : [K, N]),
                ...(biasV ? { bias: tf.tensor1d(biasV) } : {}),
              };
              const out = tf.engine().runKernel(GEMM_KERNEL, inputs, { transposeB: bT, transposeC: cT }) as tf.Tensor;
              expect(out.shape).toEqual(cT ? [N, M] : [M, N]);
              return out.dataSync() as Float32Array;
            });
            let worst = 0;
            for (let m = 0; m < M; m++) {
              for (let n = 0; n < N; n++) {
                const g = got[cT ? n * M + m : m * N + n]!;
                const err = Math.abs(g - c[m * N + n]!);
                // Exact for integers; else float32 rounding, which grows like √K on random signs.
                const tol = ints ? 0 : 4 * 2 ** -24 * Math.sqrt(K) * mag[m * N + n]! + 1e-30;
                if (!(err <= tol)) throw new Error(`M=${M} K=${K} N=${N} bT=${bT} cT=${cT} bias=${withBias}: C[${m}, ${n}] = ${g}, want ${c[m * N + n]} (error ${err} > ${tol})`);
                worst = Math.max(worst, err / (mag[m * N + n]! || 1));
              }
            }
            log.add(`${M}x${K}x${N}${bT ? ' bT' : ''}${cT ? ' cT' : ''}${withBias ? ' +bias' : ''} (relative)`, worst);
          }
        }
      }
      log.print();
    });
  }

  it('linearRowMajor and linear(): x·Wᵀ + b, on the kernel and on the XNNPACK fallback', () => {
    const log = new ErrorLog('Linear, x [N, in] · W [out, in]ᵀ + b');
    for (const [N, inDim, out] of [[1, 1, 1], [3, 17, 5], [13, 37, 21], [130, 64, 99], [2, 1024, 4096]] as const) {
      const X = values(N * inDim, N + inDim, false);
      const W = values(out * inDim, out, false);
      const Bv = values(out, out + 1, false);
      const { c, mag } = reference(W, X, out, inDim, N, true, Bv, true); // yᵀ [out, N]
      for (const on of [true, false]) {
        setKernelEnabled(on);
        expect(kernelStatus().active).toBe(on);
        const got = tf.tidy(() => {
          const x = tf.tensor2d(X, [N, inDim]);
          const p = { weight: tf.tensor2d(W, [out, inDim]), bias: tf.tensor1d(Bv) };
          const direct = linearRowMajor(x, p.weight, p.bias);
          expect(direct === null).toBe(!on);
          const y = linear(tf.reshape(x, [1, N, inDim]), p);
          expect(y.shape).toEqual([1, N, out]);
          return y.dataSync() as Float32Array;
        });
        let worst = 0;
        for (let n = 0; n < N; n++) {
          for (let o = 0; o < out; o++) {
            const err = Math.abs(got[n * out + o]! - c[o * N + n]!);
            expect(err, `N=${N} in=${inDim} out=${out} kernel=${on} y[${n}, ${o}]`).toBeLessThanOrEqual(4 * 2 ** -24 * Math.sqrt(inDim) * mag[o * N + n]! + 1e-30);
            worst = Math.max(worst, err);
          }
        }
        log.add(`${N}x${inDim} -> ${out} (${on ? 'kernel' : 'XNNPACK'})`, worst);
      }
    }
    setKernelEnabled(true);
    log.print();
  });

  it('GELU in the store: gelu(x·Wᵀ + b) against the exact (erf) GELU in float64', () => {
    const log = new ErrorLog('Linear + GELU in the store');
    // Pre-activations exactly representable: x = [[1]], W = 0, bias = the grid, so y = gelu(bias).
    const grid = Float32Array.from([...Array(2401)].map((_, i) => -12 + i / 100).concat([-100, -88, -30, -0, 0, 1e-30, 30, 88, 100]));
    const y = tf.tidy(() => linearRowMajor(tf.ones([1, 1]), tf.zeros([grid.length, 1]), tf.tensor1d(grid), 'gelu')!.dataSync());
    let worst = 0;
    grid.forEach((x, i) => {
      const err = Math.abs(y[i]! - gelu64(x));
      expect(err, `gelu(${x}) = ${y[i]}, want ${gelu64(x)}`).toBeLessThanOrEqual(2e-7 * Math.max(1, Math.abs(x)));
      worst = Math.max(worst, err / Math.max(1, Math.abs(x)));
    });
    log.add('gelu on a grid of [-12, 12] and extremes (relative to max(1, |x|))', worst);
    for (const [N, inDim, out] of [[1, 3, 1], [9, 37, 13], [70, 256, 300]] as const) {
      const X = values(N * inDim, N + 2 * inDim, false);
      const W = values(out * inDim, out + 5, false);
      const Bv = values(out, out + 9, false);
      const { c, mag } = reference(W, X, out, inDim, N, true, Bv, true);
      // linearRowMajor computes W·xᵀ and stores it transposed (bias per row of the product); the
      // kernel called as x·Wᵀ stores it as computed (bias per column): both layouts of the GELU store
      const [X2, W2, B1] = [tf.tensor2d(X, [N, inDim]), tf.tensor2d(W, [out, inDim]), tf.tensor1d(Bv)];
      const layouts = {
        'W·xᵀ stored transposed': () => linearRowMajor(X2, W2, B1, 'gelu')!,
        'x·Wᵀ stored as computed': () => tf.engine().runKernel(GEMM_KERNEL, { a: X2, b: W2, bias: B1 }, { transposeB: true, transposeC: false, activation: 'gelu' }) as tf.Tensor,
      };
      for (const [layout, run] of Object.entries(layouts)) {
        const got = tf.tidy(() => run().dataSync());
        let w2 = 0;
        for (let n = 0; n < N; n++) {
          for (let o = 0; o < out; o++) {
            const pre = c[o * N + n]!;
            const err = Math.abs(got[n * out + o]! - gelu64(pre));
            expect(err, `${layout}: N=${N} in=${inDim} out=${out} y[${n}, ${o}]`).toBeLessThanOrEqual(1.2 * 4 * 2 ** -24 * Math.sqrt(inDim) * mag[o * N + n]! + 2e-7 * Math.max(1, Math.abs(pre)));
            w2 = Math.max(w2, err);
          }
        }
        log.add(`${N}x${inDim} -> ${out}, GELU, ${layout} (abs)`, w2);
      }
      tf.dispose([X2, W2, B1]);
    }
    log.print();
  });

  it('the same bits every run: which thread takes which work item does not change a result', () => {
    const x = tf.tensor2d(values(200 * 300, 11, false), [200, 300]);
    const w = tf.tensor2d(values(260 * 300, 12, false), [260, 300]);
    const b = tf.tensor1d(values(260, 13, false));
    const first = tf.tidy(() => linearRowMajor(x, w, b, 'gelu')!.dataSync());
    for (let i = 0; i < 5; i++) expect(tf.tidy(() => linearRowMajor(x, w, b, 'gelu')!.dataSync())).toEqual(first);
    tf.dispose([x, w, b]);
  });

  it('linearsRowMajor: several Linears of one x (packed once when it fits) give linearRowMajor\'s bits', () => {
    // 70 x 256 fits the pack buffer whole (x packed once, read by all three); 300 x 4096 does not (each packs its own chunks)
    // (a first Linear with no outputs runs no GEMM: the next one must pack x itself)
    for (const [N, inDim, outs] of [[70, 256, [300, 13, 8]], [300, 4096, [40, 9]], [20, 64, [0, 12]]] as const) {
      const x = tf.tensor2d(values(N * inDim, N + inDim, false), [N, inDim]);
      const layers = outs.map((out, i) => ({
        weight: tf.tensor2d(values(out * inDim, out + i, false), [out, inDim]),
        bias: i === 1 ? undefined : tf.tensor1d(values(out, out + 7 * i, false)), // the second without a bias
      }));
      // another x of the same shape packed just before: a pack buffer read when it should not be would show
      const other = tf.tensor2d(values(N * inDim, 3, false), [N, inDim]);
      const last = layers[layers.length - 1]!;
      tf.tidy(() => linearRowMajor(other, last.weight, last.bias));
      const got = tf.tidy(() => linearsRowMajor(x, layers)!.map((y) => y.dataSync()));
      layers.forEach((l, i) => {
        const want = tf.tidy(() => linearRowMajor(x, l.weight, l.bias)!.dataSync());
        expect(got[i]!.length, `${N}x${inDim} -> ${outs[i]}`).toBe(want.length);
        expect(got[i], `${N}x${inDim} -> ${outs[i]}: layer ${i}`).toEqual(want);
      });
      tf.dispose([x, other, ...layers.flatMap((l) => (l.bias ? [l.weight, l.bias] : [l.weight]))]);
    }
  });

  it('kernelMatMul: q·kᵀ and probs·v layouts', () => {
    const a = tf.tensor2d(values(9 * 64, 5, false), [9, 64]);
    const kt = tf.tensor2d(values(64 * 11, 6, false), [64, 11]);
    const k = tf.transpose(kt) as tf.Tensor2D;
    const want = tf.matMul(a, kt);
    for (const got of [kernelMatMul(a, kt)!, kernelMatMul(a, k, { transposeB: true })!]) {
      const err = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!;
      console.log(`kernelMatMul [9x64]·[64x11]: max abs error vs XNNPACK ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
      got.dispose();
    }
    tf.dispose([a, kt, k, want]);
  });
});

describe('GEMM kernel: bad input and memory', () => {
  it('names the operand at fault', () => {
    const a = tf.zeros([4, 5]);
    const run = (inputs: tf.NamedTensorMap, attrs = { transposeB: false, transposeC: false }) => tf.engine().runKernel(GEMM_KERNEL, inputs, attrs);
    expect(() => run({ a, b: tf.zeros([6, 3]) })).toThrow(/inner sizes differ/);
    expect(() => run({ a, b: tf.zeros([5, 3]), bias: tf.zeros([4]) })).toThrow(/bias must be \[3\]/);
    expect(() => run({ a, b: tf.zeros([5, 3], 'int32') })).toThrow(/b must be float32/);
    expect(() => run({ a: tf.zeros([2, 2, 5]), b: tf.zeros([5, 3]) })).toThrow(/must be 2-D/);
    const linears = (inputs: tf.NamedTensorMap, count: number) => tf.engine().runKernel(LINEARS_KERNEL, inputs, { count });
    const x = tf.zeros([2, 5]);
    expect(() => linears({ x, w0: a, w1: tf.zeros([3, 6]) }, 2)).toThrow(/w1 must be a float32 \[out, 5\]/);
    expect(() => linears({ x, w0: a, b0: tf.zeros([3]) }, 1)).toThrow(/b0 must be a float32 \[4\]/);
    expect(() => linears({ x, w0: a }, 2)).toThrow(/w1 must be/);
    expect(() => linears({ x: tf.zeros([2, 5], 'int32'), w0: a }, 1)).toThrow(/x must be a float32/);
    const y = run({ a: tf.zeros([4, 0]), b: tf.zeros([0, 3]), bias: tf.tensor1d([1, 2, 3]) }) as tf.Tensor;
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]); // K = 0: the bias alone
  });

  it('tf.memory() and the wasm heap stay flat across repeated calls', () => {
    const x = tf.tensor2d(values(200 * 256, 1, false), [200, 256]);
    const w = tf.tensor2d(values(300 * 256, 2, false), [300, 256]);
    const b = tf.tensor1d(values(300, 3, false));
    const call = () => tf.tidy(() => { linearRowMajor(x, w, b); kernelMatMul(x, w, { transposeB: true }); linearsRowMajor(x, [{ weight: w, bias: b }, { weight: w }]); });
    for (let i = 0; i < 3; i++) call();
    const before = tf.memory().numTensors;
    const heap = heapStats()?.heapBytes;
    for (let i = 0; i < 50; i++) call();
    expect(tf.memory().numTensors).toBe(before);
    expect(heapStats()?.heapBytes).toBe(heap);
    tf.dispose([x, w, b]);
  });

  it('the committed kernel.wasm.ts is what scripts/build-kernels.mjs assembles from kernel.wat and its parts', () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    // Throws (exit 1, with the file named) when the generated module is stale.
    execFileSync(process.execPath, [join(root, 'scripts', 'build-kernels.mjs'), '--check'], { stdio: 'pipe' });
  });
});
