/**
 * The kernel pool's worker is a module file (src/kernels/worker.js and the worker-loop.js it shares
 * with the browser's worker, copied to dist/ by tsc), not a source string: it loads from the
 * TypeScript sources (here, under vitest) and from the build (dist/, as the CLI and the notebooks run
 * it), and a job split over two threads gives exact results in both.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '../../src/backend.js';
import { kernelMatMul, kernelStatus } from '../../src/kernels/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A [256, 512] · [512, 384] product of small integers on the kernel (large enough to use both threads): the count of wrong entries. */
const CHECK = `
  const [M, K, N] = [256, 512, 384];
  const a = Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 11) - 5);
  const b = Float32Array.from({ length: K * N }, (_, i) => ((i * 5) % 13) - 6);
  const c = kernelMatMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N]));
  const got = c.dataSync();
  let wrong = 0;
  for (let i = 0; i < M; i += 17) for (let j = 0; j < N; j += 13) {
    let s = 0; for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
    if (got[i * N + j] !== s) wrong++;
  }
  return { wrong, threads: kernelStatus().threads };
`;

describe('kernel worker module', () => {
  beforeAll(async () => { await useBackend('wasm', { threads: 2 }); });

  it('is a plain JavaScript module the hosts load by URL (no eval source; bundlers see the Web Worker)', () => {
    for (const file of ['kernels/worker.js', 'kernels/worker-loop.js', 'host/kernel-worker.browser.js']) {
      const path = join(ROOT, 'src', file);
      expect(existsSync(path), file).toBe(true);
      execFileSync(process.execPath, ['--check', path]); // parses as JavaScript: no TypeScript syntax
    }
    const node = readFileSync(join(ROOT, 'src', 'host', 'kernel-host.ts'), 'utf8');
    expect(node).toMatch(/new URL\('\.\.\/kernels\/worker\.js', import\.meta\.url\)/);
    expect(node).not.toMatch(/eval:\s*true/);
    // Vite and webpack detect a worker only in this literal form.
    const web = readFileSync(join(ROOT, 'src', 'host', 'kernel-host.browser.ts'), 'utf8');
    expect(web).toContain("new Worker(new URL('./kernel-worker.browser.js', import.meta.url), { type: 'module'");
  });

  it('runs a two-thread job from the sources', () => {
    const { wrong, threads } = new Function('tf', 'kernelMatMul', 'kernelStatus', CHECK)(tf, kernelMatMul, kernelStatus) as { wrong: number; threads: number };
    expect(threads).toBe(2);
    expect(wrong).toBe(0);
  });

  it('runs a two-thread job from dist/ (the build has worker.js next to pool.js)', () => {
    expect(existsSync(join(ROOT, 'dist', 'kernels', 'worker.js'))).toBe(true);
    const script = `
      import * as tf from '@tensorflow/tfjs-core';
      import { useBackend } from './dist/backend.js';
      import { kernelMatMul, kernelStatus } from './dist/kernels/index.js';
      await useBackend('wasm', { threads: 2 });
      const run = () => { ${CHECK} };
      console.log(JSON.stringify(run()));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    const { wrong, threads } = JSON.parse(out.trim().split('\n').pop()!) as { wrong: number; threads: number };
    console.log(`dist: ${threads} threads, ${wrong} wrong entries`);
    expect(threads).toBe(2);
    expect(wrong).toBe(0);
  });
});
