/**
 * The pieces of `bge-m3 bench`: shapes, FLOP counts, peak-RSS readings, timing one shape through
 * `BgeM3.encode`, and a client for the PyTorch baseline (`scripts/bench_torch.py --serve`).
 */
import type { Formulation } from '../run-encoder.js';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { XLMRobertaConfig } from '../config.js';
import type { BgeM3 } from '../m3.js';
import { TORCH_BENCH_SCRIPT } from '../package-files.js';

export interface Shape { readonly rows: number; readonly tokens: number; readonly label: string }

/** "1x128,8x128" -> shapes; throws on anything else. */
export function parseShapes(list: string): Shape[] {
  return list.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    const m = /^(\d+)x(\d+)$/i.exec(s);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 2) throw new Error(`shape '${s}' is not BxT (rows x tokens per row, T >= 2), e.g. 1x128`);
    return { rows: Number(m[1]), tokens: Number(m[2]), label: `${Number(m[1])}x${Number(m[2])}` };
  });
}

/**
 * Multiply-adds ×2 of one encoder forward on a B×T batch: the four H×H projections and the two
 * H×I ones per token, plus q·kᵀ and probs·v (2·T²·H each per row). Embeddings and heads are left out.
 */
export function encoderFlops(B: number, T: number, c: XLMRobertaConfig): number {
  const H = c.hidden_size;
  const I = c.intermediate_size;
  const perLayer = B * T * 2 * (4 * H * H + 2 * H * I) + B * 4 * T * T * H;
  return perLayer * c.num_hidden_layers;
}

/** Resets this process's peak RSS (Linux: VmHWM), so the next reading covers what follows. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak RSS in MB since the last reset (VmHWM), or the process's lifetime maximum where /proc is missing. */
export function peakRssMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch { /* not Linux */ }
  return process.resourceUsage().maxRSS / 1024;
}

/** Seeded random token ids for one shape: `<s>` … `</s>` rows of ids in [3, vocab). */
export function randomIds(shape: Shape, vocab: number, seed = 1): number[][] {
  let s = (seed * 2654435761 + shape.rows * 40503 + shape.tokens) >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  return Array.from({ length: shape.rows }, () => [0, ...Array.from({ length: shape.tokens - 2 }, () => 3 + (next() % (vocab - 3))), 2]);
}

export interface ShapeResult {
  shape: string;
  median_s: number;
  tokens_per_s: number;
  gflops: number;
  peak_rss_mb: number;
  runs_s: number[];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Times `reps` encodes of one B×T batch (one forward each) after `warmup` untimed ones. */
export async function timeShape(
  m3: BgeM3, shape: Shape, reps: number, warmup: number,
  outputs: { dense: boolean; sparse: boolean; colbert: boolean },
  forward: Formulation = 'fast',
): Promise<ShapeResult> {
  const ids = randomIds(shape, m3.config.vocab_size);
  const opts = {
    returnDense: outputs.dense, returnSparse: outputs.sparse, returnColbert: outputs.colbert,
    batchSize: shape.rows, maxTokensPerBatch: shape.rows * shape.tokens, maxLength: Math.max(shape.tokens, 2), forward,
  };
  resetPeakRss();
  for (let i = 0; i < warmup; i++) await m3.encode({ inputIds: ids }, opts);
  const runs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await m3.encode({ inputIds: ids }, opts);
    runs.push((performance.now() - t0) / 1000);
  }
  const med = median(runs);
  return {
    shape: shape.label,
    median_s: med,
    tokens_per_s: (shape.rows * shape.tokens) / med,
    gflops: encoderFlops(shape.rows, shape.tokens, m3.config) / med / 1e9,
    peak_rss_mb: peakRssMb(),
    runs_s: runs,
  };
}

/** Seconds to read a file once through fs (into one reused 64 MiB buffer). */
export async function timeFileRead(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(64 << 20);
    const t0 = performance.now();
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
    }
    return (performance.now() - t0) / 1000;
  } finally {
    await fh.close();
  }
}

export interface TorchResult { shape: string; median_s: number; tokens_per_s: number; peak_rss_mb: number; runs_s: number[]; threads: number; torch: string }

/** The baseline script, shipped in the package (scripts/bench_torch.py). */
export function torchScript(): string {
  return TORCH_BENCH_SCRIPT;
}

/** The first Python that can import torch: $BGE_M3_PYTHON, python3, /usr/bin/python3 (Debian's python3-torch). */
export function findTorchPython(): string | null {
  const candidates = [process.env.BGE_M3_PYTHON, 'python3', '/usr/bin/python3'].filter((x): x is string => !!x);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 120_000 });
    if (r.status === 0) return py;
  }
  return null;
}

/** A running `bench_torch.py --serve`: one shape in, one JSON result out. */
export class TorchBaseline {
  private readonly lines: AsyncIterableIterator<string>;
  private stderr = '';

  private constructor(private readonly proc: ChildProcessWithoutNullStreams, readonly info: Record<string, unknown>, lines: AsyncIterableIterator<string>) {
    this.lines = lines;
    proc.stderr.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000); });
  }

  static async start(python: string, threads: number, c: XLMRobertaConfig): Promise<TorchBaseline> {
    const script = torchScript();
    if (!existsSync(script)) throw new Error(`its script ${script} is not in this install of bge-m3-tfjs (the package ships it as scripts/bench_torch.py; copy it there from the source repository)`);
    const proc = spawn(python, [script, '--serve', '--threads', String(threads),
      '--layers', String(c.num_hidden_layers), '--hidden', String(c.hidden_size), '--heads', String(c.num_attention_heads),
      '--intermediate', String(c.intermediate_size), '--vocab', String(c.vocab_size), '--positions', String(c.max_position_embeddings)], {
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
    const lines = createInterface({ input: proc.stdout, crlfDelay: Infinity })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error(`PyTorch baseline did not start: ${err.trim() || 'no output'}`);
    return new TorchBaseline(proc, JSON.parse(first.value) as Record<string, unknown>, lines);
  }

  async run(shape: Shape, reps: number, warmup: number): Promise<TorchResult> {
    this.proc.stdin.write(`${shape.label} ${reps} ${warmup}\n`);
    const r = await this.lines.next();
    if (r.done) throw new Error(`PyTorch baseline exited: ${this.stderr.trim() || 'no output'}`);
    return JSON.parse(r.value) as TorchResult;
  }

  close(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}

/** Total and idle CPU ticks of the machine so far (Linux /proc/stat), or null elsewhere. */
export function cpuTicks(): { total: number; idle: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { total: f.reduce((a, x) => a + x, 0), idle: f[3]! + (f[4] ?? 0) };
  } catch {
    return null;
  }
}

/** Percent of the machine's CPU time that was idle since `from` (a cpuTicks() reading). */
export function idlePercentSince(from: { total: number; idle: number } | null): number | null {
  const now = cpuTicks();
  if (!from || !now || now.total === from.total) return null;
  return (100 * (now.idle - from.idle)) / (now.total - from.total);
}
