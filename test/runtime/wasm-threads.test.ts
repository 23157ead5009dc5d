/**
 * The multi-threaded wasm backend: it starts with the threads asked for (no silent fallback), and a
 * forward on it equals a forward on the single-threaded build (run in a child process, since the
 * thread count is fixed once a process has created its backend).
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BgeM3 } from '../../src/m3.js';
import { defaultWasmThreads, wasmThreadsStatus } from '../../src/runtime/wasm-threads.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases, maxAbsDiff } from '../helpers/reference.js';

const ids = loadCases().slice(0, 6).map((c) => c.input_ids);

/** Dense and ColBERT outputs of `ids` on small-m3 with the given wasm threads, from a fresh process. */
function childOutputs(threads: number): { dense: number[][]; colbert: number[][] } {
  const script = `
    const { BgeM3 } = await import(${JSON.stringify(new URL('../../src/m3.ts', import.meta.url).href)});
    const { wasmThreadsStatus } = await import(${JSON.stringify(new URL('../../src/runtime/wasm-threads.ts', import.meta.url).href)});
    const m3 = await BgeM3.load(${JSON.stringify(checkpointDir('small-m3'))}, { threads: ${threads} });
    const out = await m3.encode({ inputIds: ${JSON.stringify(ids)} }, { returnColbert: true });
    process.stdout.write(JSON.stringify({ status: wasmThreadsStatus(), dense: out.denseVecs.map((v) => Array.from(v)), colbert: out.colbertVecs.map((c) => Array.from(c.data)) }));
    process.exit(0);
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', timeout: 60_000,
  });
  const r = JSON.parse(out) as { status: { actual: number }; dense: number[][]; colbert: number[][] };
  expect(r.status.actual).toBe(threads);
  return r;
}

describe('multi-threaded wasm backend', () => {
  it('runs with the threads asked for', async () => {
    const m3 = await BgeM3.load(checkpointDir('tiny-m3'));
    m3.dispose();
    const s = wasmThreadsStatus();
    expect(s.fallbackReason).toBeUndefined();
    expect(s.requested).toBe(defaultWasmThreads());
    expect(s.actual).toBe(s.requested);
  });

  it.skipIf(availableParallelism() < 2)('gives the same outputs as the single-threaded build', () => {
    const one = childOutputs(1);
    const two = childOutputs(2);
    let worst = 0;
    one.dense.forEach((v, i) => { worst = Math.max(worst, maxAbsDiff(v, two.dense[i]!), maxAbsDiff(one.colbert[i]!, two.colbert[i]!)); });
    console.log(`1 vs 2 threads: max abs diff ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-6);
  });
});
