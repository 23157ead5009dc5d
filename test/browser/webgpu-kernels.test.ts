/**
 * Which tfjs kernels the model runs on the webgpu backend, and whether each has a WebGPU
 * implementation (tfjs does not fall back per op: a missing one would fail the whole `encode`). Both
 * op sets (`forward: 'fast' | 'reference'`) and all three outputs, in Chromium on SwiftShader. The
 * project's own wasm kernels (the FMA GEMM, the heap copies) never run there: the op set takes plain
 * tf ops on other backends. The list is printed; the test fails on any kernel without a WebGPU one.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startStaticServer } from '../../src/serve/static.js';
import { FIXTURES } from '../helpers/fixtures.js';
// @ts-expect-error: a plain .mjs build script, no typings
import { haveWebgpu } from '../../scripts/build-browser.mjs';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(FIXTURES, '..', '..');

describe.skipIf(!existsSync(CHROMIUM) || !(haveWebgpu() as boolean))('the model on webgpu (SwiftShader)', () => {
  it('runs only kernels that have a WebGPU implementation, with both op sets', { timeout: 300_000 }, async () => {
    const server = await startStaticServer({ mounts: { '/dist/': join(ROOT, 'dist'), '/test/': join(ROOT, 'test') } });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}test/browser/page.html`);
      await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 });
      const got = await page.evaluate(async (model) => {
        const bge = (window as unknown as { bge: any }).bge;
        const m3 = await bge.BgeM3.load(model, { backend: 'webgpu' });
        const used = new Set<string>();
        for (const forward of ['fast', 'reference']) {
          const p = await bge.tf.profile(async () => {
            await m3.encode({ inputIds: [[0, 5, 6, 7, 8, 2], [0, 9, 2]] }, { returnDense: true, returnSparse: true, returnColbert: true, forward });
          });
          for (const k of p.kernelNames as string[]) used.add(k);
        }
        const webgpu = new Set((bge.tf.getKernelsForBackend('webgpu') as Array<{ kernelName: string }>).map((k) => k.kernelName));
        m3.dispose();
        return { backend: bge.tf.getBackend() as string, used: [...used].sort(), missing: [...used].filter((k) => !webgpu.has(k)) };
      }, `${server.url}test/fixtures/tiny-m3/`);
      console.log(`kernels run on webgpu (${got.used.length}): ${got.used.join(', ')}; without a WebGPU kernel: ${got.missing.join(', ') || 'none'}`);
      expect(got.backend).toBe('webgpu');
      expect(got.used).toContain('BatchMatMul');
      expect(got.missing).toEqual([]);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
