/**
 * `bge-m3 bench [--model DIR | --random large] [--shapes 1x16,32x16,1x128,8x128,1x512] [--backend NAME]
 *   [--threads N] [--reps N] [--outputs dense|all] [--forward fast|reference] [--no-torch] [--json]`
 * Loads a model (a snapshot, or a random full-size one built once under ~/.cache/bge-m3-tfjs), times
 * each shape through `encode`, and, when a Python with torch is found, the same shapes through the
 * PyTorch baseline (scripts/bench_torch.py) in the same run, the reps of the two alternating.
 */
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { wasmThreadsStatus } from '../runtime/wasm-threads.js';
import {
  cpuTicks, idlePercentSince, findTorchPython, median, parseShapes, peakRssMb, resetPeakRss, timeFileRead, timeShape, TorchBaseline,
  type ShapeResult, type TorchResult,
} from '../bench/bench.js';
import { defaultCacheDir, ensureRandomCheckpoint, PRESETS } from '../bench/random-checkpoint.js';
import { heapStats } from '../runtime/heap-guard.js';
import { FORMULATIONS, type Formulation } from '../run-encoder.js';
import { partFiles } from '../weights/checkpoint-files.js';
import { fmaPeakGflops, forwardGemmShapes, kernelStatus, setKernelEnabled, timeGemmShapes } from '../kernels/index.js';
import { defineCommand } from './command.js';
import { CliError, intFlag } from './io.js';

const DEFAULT_SHAPES = '1x16,32x16,1x128,8x128,1x512';

export const USAGE = `Usage: bge-m3 bench [--model DIR | --random large] [--shapes ${DEFAULT_SHAPES}]
                   [--backend wasm|cpu|tensorflow] [--threads N] [--reps N] [--outputs dense|all]
                   [--forward fast|reference] [--torch-threads N] [--no-torch] [--kernel on|off] [--no-gemm] [--json]

Times encode() on batches of random token ids, shape by shape (BxT: B rows of T tokens, one forward
each), after a warm-up, and prints per shape the median seconds, tokens/s, GFLOP/s and peak RSS, plus
the model's load time and load peak RSS. With a Python that imports torch (Debian: apt-get install
python3-torch libopenblas0-pthread; or set BGE_M3_PYTHON), the same shapes also run through a PyTorch
encoder of the same sizes (scripts/bench_torch.py) in the same run, rep by rep in turn with this
project's (so that both meet the same machine), and the ratio of the medians is printed. On the wasm backend it first says which matMul path runs (the FMA kernel of src/kernels, or XNNPACK
and why), measures the 128-bit FMA peak of one thread, and times the forward's Linear shapes at 128
and 512 tokens (the model's sizes) through the kernel and through XNNPACK.

Options:
  --model DIR         a BGE-M3 snapshot directory
  --random PRESET     a random-weight snapshot, built once into ~/.cache/bge-m3-tfjs/random-PRESET
                      (${Object.keys(PRESETS).join(', ')}; default when --model is not given: large)
  --shapes LIST       comma-separated BxT (default ${DEFAULT_SHAPES}; also e.g. 1x2048,1x8192)
  --backend NAME      tfjs backend (default wasm)
  --threads N         wasm matMul threads (default: all cores Node may use)
  --reps N            timed runs per shape (default 3; 1 for shapes of 4096 tokens or more)
  --outputs WHICH     dense (default) or all (dense, sparse and ColBERT heads)
  --forward NAME      the encoder's formulation: fast (default) or reference (the textbook one)
  --torch-threads N   threads of the PyTorch baseline (default 2)
  --no-torch          skip the PyTorch baseline
  --kernel on|off     the FMA GEMM kernel where it can run (default on), or XNNPACK only
  --no-gemm           skip the per-shape GEMM table
  --json              one JSON object per line instead of the table
  -h, --help          show this help
`;

const fmt = (x: number, d = 1): string => x.toFixed(d);

/**
 * One result from several one-rep results of a shape (this project's or PyTorch's): the median over
 * all reps, the highest peak RSS, and GFLOP/s (where given) at that median.
 */
function mergeRuns<R extends ShapeResult | TorchResult>(parts: R[], tokens: number): R {
  const first = parts[0]!;
  const runs = parts.flatMap((p) => p.runs_s);
  const med = median(runs);
  const merged = { ...first, median_s: med, tokens_per_s: tokens / med, peak_rss_mb: Math.max(...parts.map((p) => p.peak_rss_mb)), runs_s: runs };
  if ('gflops' in merged) merged.gflops = ((first as ShapeResult).gflops * first.median_s) / med; // GFLOP of one forward / median
  return merged;
}

/** Which matMul path runs, the FMA peak, and the forward's Linear shapes on the kernel and on XNNPACK. */
function gemmReport(skipShapes: boolean, threads: number, hidden: number, intermediate: number, say: (l: string) => void, emit: (o: Record<string, unknown>) => void): void {
  const ks = kernelStatus();
  say(`matMul path: ${ks.path}`);
  const peak = fmaPeakGflops();
  const peakAll = peak === null ? null : peak * threads;
  if (peak !== null) say(`128-bit FMA peak (f32x4.relaxed_madd on registers, best of 7 runs): ${fmt(peak)} GFLOP/s on one thread, so ${fmt(peakAll!)} on ${threads} idle cores`);
  emit({ event: 'kernel', active: ks.active, path: ks.path, threads: ks.threads, fma_peak_gflops_1thread: peak });
  if (skipShapes) return;
  say(`\nGFLOP/s (wall) of the Linear shapes; "per CPU-s": GFLOP per CPU-second over all threads; "% peak": the kernel's wall GFLOP/s against the peak of ${threads} cores`);
  say(`${'N x in -> out'.padEnd(18)} ${'kernel'.padStart(7)} ${'XNNPACK'.padStart(8)} ${'XNN+tr.'.padStart(8)} ${'ratio'.padStart(6)} | ${'kernel'.padStart(7)} ${'XNNPACK'.padStart(8)} per CPU-s | ${'kernel % peak'.padStart(13)}`);
  for (const r of timeGemmShapes(forwardGemmShapes([128, 512], hidden, intermediate))) {
    const eff = r.kernel !== undefined && peakAll ? (100 * r.kernel) / peakAll : undefined;
    const opt = (x: number | undefined, d = 1): string => (x === undefined ? '-' : fmt(x, d));
    say(`${r.shape.padEnd(18)} ${opt(r.kernel).padStart(7)} ${fmt(r.xnnpack).padStart(8)} ${fmt(r.xnnpackLinear).padStart(8)} ${opt(r.kernel && r.kernel / r.xnnpackLinear, 2).padStart(6)} | ${opt(r.kernelPerCpuS).padStart(7)} ${fmt(r.xnnpackPerCpuS).padStart(8)}           | ${(eff === undefined ? '-' : `${fmt(eff, 0)}%`).padStart(13)}`);
    emit({
      event: 'gemm', linear: r.shape, kernel_gflops: r.kernel, xnnpack_matmul_gflops: r.xnnpack, xnnpack_linear_gflops: r.xnnpackLinear,
      kernel_gflop_per_cpu_s: r.kernelPerCpuS, xnnpack_gflop_per_cpu_s: r.xnnpackPerCpuS, kernel_peak_fraction: eff === undefined ? undefined : eff / 100,
    });
  }
  say('(ratio = kernel / XNNPACK Linear as the fallback runs it: transpose, matMul, transpose, add bias)');
}

export const run = defineCommand({
  name: 'bench', usage: USAGE, positionals: false,
  options: {
    model: { type: 'string' }, random: { type: 'string' }, shapes: { type: 'string' }, backend: { type: 'string' },
    threads: { type: 'string' }, reps: { type: 'string' }, outputs: { type: 'string' }, forward: { type: 'string' }, 'torch-threads': { type: 'string' },
    'no-torch': { type: 'boolean' }, kernel: { type: 'string' }, 'no-gemm': { type: 'boolean' }, json: { type: 'boolean' },
  },
}, async ({ values, stdout, stderr, backend, load }) => {
  if (values.model !== undefined && values.random !== undefined) throw new CliError('give --model DIR or --random PRESET, not both', true);
  const preset = values.model === undefined ? (values.random ?? 'large') : undefined;
  if (preset !== undefined && !(preset in PRESETS)) throw new CliError(`--random must be one of ${Object.keys(PRESETS).join(', ')}, got '${preset}'`, true);
  let shapes;
  try {
    shapes = parseShapes(values.shapes ?? DEFAULT_SHAPES);
  } catch (e) {
    throw new CliError(`--shapes: ${(e as Error).message}`, true);
  }
  if (shapes.length === 0) throw new CliError('--shapes: no shape given', true);
  const backendName = backend ?? 'wasm'; // BgeM3.load's default too
  const threads = intFlag(values.threads, 'threads', 1);
  if (threads !== undefined && threads > 8) throw new CliError('--threads must be at most 8', true);
  const repsFlag = intFlag(values.reps, 'reps', 1);
  const torchThreads = intFlag(values['torch-threads'], 'torch-threads', 1) ?? 2;
  const outputs = values.outputs ?? 'dense';
  if (outputs !== 'dense' && outputs !== 'all') throw new CliError(`--outputs must be dense or all, got '${outputs}'`, true);
  const want = { dense: true, sparse: outputs === 'all', colbert: outputs === 'all' };
  const forward = values.forward ?? 'fast';
  if (!(FORMULATIONS as readonly string[]).includes(forward)) throw new CliError(`--forward must be ${FORMULATIONS.join(' or ')}, got '${forward}'`, true);
  const kernelFlag = values.kernel ?? 'on';
  if (kernelFlag !== 'on' && kernelFlag !== 'off') throw new CliError(`--kernel must be on or off, got '${kernelFlag}'`, true);
  const json = values.json === true;
  const say = (line: string): void => { if (!json) stdout.write(`${line}\n`); };
  const emit = (obj: Record<string, unknown>): void => { if (json) stdout.write(`${JSON.stringify(obj)}\n`); };

  let dir = values.model;
  if (preset !== undefined) {
    dir = defaultCacheDir(preset);
    let last = 0;
    const r = await ensureRandomCheckpoint(dir, PRESETS[preset]!, (done, total) => {
      const pct = Math.floor((100 * done) / total);
      if (pct >= last + 10) { last = pct; stderr.write(`building random '${preset}' checkpoint in ${dir}: ${pct}%\n`); }
    });
    if (r.built) stderr.write(`built ${dir} (${fmt(r.bytes / 1e6, 0)} MB)\n`);
  }
  const modelDir = dir!;

  // Load: peak RSS and time, then the time to read the weights file once more for comparison.
  resetPeakRss();
  const t0 = performance.now();
  const m3 = await load(modelDir, { threads });
  const loadS = (performance.now() - t0) / 1000;
  const loadRss = peakRssMb();
  const weightsFile = m3.files.encoder ?? join(modelDir, partFiles('encoder').safetensors);
  const weightsMb = statSync(weightsFile).size / 1e6;
  const readS = await timeFileRead(weightsFile);
  const th = wasmThreadsStatus();
  const engine = backendName === 'wasm' ? `tfjs-wasm` : `tfjs-${backendName}`;
  const threadsUsed = backendName === 'wasm' ? (th.actual ?? 1) : undefined;
  say(`model: ${preset !== undefined ? `random '${preset}' (${modelDir})` : modelDir}; forward ${forward}; backend ${backendName}${threadsUsed !== undefined ? `, ${threadsUsed} thread${threadsUsed > 1 ? 's' : ''}` : ''}${th.fallbackReason ? ` (${th.fallbackReason})` : ''}`);
  say(`load: ${fmt(loadS, 2)} s (reading ${fmt(weightsMb, 0)} MB of weights once more: ${fmt(readS, 2)} s, so ${fmt(loadS / readS, 1)}x); peak RSS ${fmt(loadRss, 0)} MB = ${fmt(loadRss / weightsMb, 2)}x the weights`);
  emit({ event: 'load', engine, threads: threadsUsed, load_s: loadS, load_peak_rss_mb: loadRss, weights_mb: weightsMb, file_read_s: readS });
  setKernelEnabled(kernelFlag === 'on');
  if (backendName === 'wasm') gemmReport(values['no-gemm'] === true, threadsUsed ?? 1, m3.config.hidden_size, m3.config.intermediate_size, say, emit);

  // The baseline, if torch is importable.
  let torch: TorchBaseline | null = null;
  if (!values['no-torch']) {
    const py = findTorchPython();
    if (!py) say('PyTorch baseline skipped: no python3 that imports torch (apt-get install python3-torch libopenblas0-pthread, or set BGE_M3_PYTHON)');
    else {
      try {
        torch = await TorchBaseline.start(py, torchThreads, m3.config);
        say(`PyTorch baseline: torch ${String(torch.info.torch)}, ${String(torch.info.threads)} threads, BLAS ${String(torch.info.blas)} (${py})`);
      } catch (e) {
        say(`PyTorch baseline skipped: ${(e as Error).message}`);
      }
    }
  }

  try {
    const ticks = cpuTicks();
    // One untimed pass on a small batch so the first shape does not pay for kernel set-up.
    await m3.encode({ inputIds: [[0, 5, 6, 7, 2]] });
    say('');
    say(`${'shape'.padEnd(8)} ${'median s'.padStart(9)} ${'tok/s'.padStart(8)} ${'GFLOP/s'.padStart(8)} ${'peak RSS MB'.padStart(12)}${torch ? ` | ${'torch s'.padStart(8)} ${'tok/s'.padStart(8)} ${'RSS MB'.padStart(7)} | ${'ratio'.padStart(5)} ${'rep pairs'.padStart(11)}` : ''}`);
    for (const shape of shapes) {
      const big = shape.rows * shape.tokens >= 4096;
      const reps = repsFlag ?? (big ? 1 : 3);
      const warmup = big ? 0 : 1;
      // With the baseline, the reps alternate (this project, PyTorch, this project, …) so that both
      // engines meet the same machine: on a shared host, contention drifts over seconds.
      const mine: ShapeResult[] = [];
      const theirs: TorchResult[] = [];
      let failed = false;
      for (let i = 0; i < (torch ? reps : 1) && !failed; i++) {
        const w = i === 0 ? warmup : 0;
        try {
          mine.push(await timeShape(m3, shape, torch ? 1 : reps, w, want, forward as Formulation));
        } catch (e) {
          say(`${shape.label.padEnd(8)} failed: ${(e as Error).message}`);
          emit({ shape: shape.label, engine, error: (e as Error).message });
          failed = true;
          break;
        }
        if (torch) {
          try {
            theirs.push(await torch.run(shape, 1, w));
          } catch (e) {
            say(`  PyTorch baseline failed on ${shape.label}: ${(e as Error).message}`);
            torch.close();
            torch = null;
            theirs.length = 0;
          }
        }
      }
      if (failed) continue;
      const r = mergeRuns(mine, shape.rows * shape.tokens);
      const t = theirs.length ? mergeRuns(theirs, shape.rows * shape.tokens) : null;
      const ratio = t ? r.tokens_per_s / t.tokens_per_s : undefined;
      // each rep of this project against the PyTorch rep right after it: the spread the machine allowed
      const pairs = t && t.runs_s.length === r.runs_s.length ? r.runs_s.map((s, i) => t.runs_s[i]! / s).sort((a, b) => a - b) : [];
      const spread = pairs.length > 1 ? `${fmt(pairs[0]!, 2)}–${fmt(pairs[pairs.length - 1]!, 2)}` : '';
      say(`${shape.label.padEnd(8)} ${fmt(r.median_s, 3).padStart(9)} ${fmt(r.tokens_per_s).padStart(8)} ${fmt(r.gflops).padStart(8)} ${fmt(r.peak_rss_mb, 0).padStart(12)}${t ? ` | ${fmt(t.median_s, 3).padStart(8)} ${fmt(t.tokens_per_s).padStart(8)} ${fmt(t.peak_rss_mb, 0).padStart(7)} | ${fmt(ratio!, 2).padStart(5)} ${spread.padStart(11)}` : ''}`);
      emit({
        shape: r.shape, tokens_per_s: r.tokens_per_s, median_s: r.median_s, gflops: r.gflops, peak_rss_mb: r.peak_rss_mb,
        engine, forward, threads: threadsUsed, runs_s: r.runs_s,
        ...(t ? { torch_tokens_per_s: t.tokens_per_s, torch_median_s: t.median_s, torch_peak_rss_mb: t.peak_rss_mb, torch_threads: t.threads, ratio, ...(pairs.length ? { ratio_pairs: pairs } : {}) } : {}),
      });
    }
    const idle = idlePercentSince(ticks);
    if (idle !== null) {
      say(`\nmachine: ${fmt(idle, 0)}% idle over the timed runs (load average ${loadavg().map((x) => fmt(x, 1)).join(' ')}): ratios from one run are what to compare`);
      if (torch) say('(ratio: of the medians; rep pairs: lowest–highest ratio of one rep to the PyTorch rep after it)');
      emit({ event: 'machine', idle_percent: idle, loadavg: loadavg() });
    }
    const h = heapStats();
    if (h) {
      say(`\nwasm heap: ${fmt(h.heapBytes / 2 ** 20, 0)} MiB (tensors ${fmt(h.tensorBytes / 2 ** 20, 0)} MiB; limit 4096 MiB)`);
      emit({ event: 'heap', heap_mib: h.heapBytes / 2 ** 20, tensor_mib: h.tensorBytes / 2 ** 20, limit_mib: 4096 });
    }
  } finally {
    torch?.close();
    m3.dispose();
  }
  return 0;
});
