/**
 * The package through a bundler: a tiny app that imports `bge-m3-tfjs` is built with Vite (vitest's own
 * dependency), which takes dist/ by the `browser` export condition and field and must find the FMA
 * kernel's Web Worker by its `new Worker(new URL('./kernel-worker.browser.js', import.meta.url), …)`
 * and emit it as a chunk. The built app, served with COOP/COEP in Chromium, runs the kernel on that
 * worker and its dense vector equals Node's. Skipped only when /usr/bin/chromium is missing.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BgeM3 } from '../../src/m3.js';
import { startStaticServer } from '../../src/serve/static.js';
import { checkpointDir, FIXTURES } from '../helpers/fixtures.js';
import { maxAbsDiff } from '../helpers/reference.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(FIXTURES, '..', '..');
const IDS = [0, 5, 6, 7, 8, 9, 2];

const APP = `import { BgeM3, runtimeInfo, setWasmFolder } from 'bge-m3-tfjs';
window.run = async (model, wasmFolder) => {
  setWasmFolder(wasmFolder); // Vite does not copy tfjs's .wasm files: the test serves dist/browser's
  const m3 = await BgeM3.load(model, { backend: 'wasm' });
  const out = await m3.encode({ inputIds: [${JSON.stringify(IDS)}] }, { returnDense: true });
  m3.dispose();
  return { runtime: runtimeInfo(), dense: Array.from(out.denseVecs[0]) };
};
document.body.dataset.ready = 'true';
`;

describe.skipIf(!existsSync(CHROMIUM))('bundled by Vite (the browser condition)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bge-m3-vite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('emits the kernel worker as a chunk, and the built app runs the FMA kernel on it, equal to Node', { timeout: 120_000 }, async () => {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'bge-m3-tfjs'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>');
    writeFileSync(join(dir, 'main.js'), APP);
    const { build } = await import('vite');
    await build({ root: dir, logLevel: 'silent', configFile: false, build: { target: 'es2022', minify: false, outDir: join(dir, 'out') } });
    const chunks = readdirSync(join(dir, 'out', 'assets'));
    console.log(`vite chunks: ${chunks.join(', ')}`);
    expect(chunks.some((f) => /^kernel-worker\.browser-.*\.js$/.test(f))).toBe(true);

    const m3 = await BgeM3.load(checkpointDir('sharp-m3'), { backend: 'wasm' });
    const node = Array.from((await m3.encode({ inputIds: [IDS] }, { returnDense: true })).denseVecs![0]!);
    m3.dispose();
    const server = await startStaticServer({
      isolate: true,
      mounts: { '/assets/': join(dir, 'out', 'assets'), '/app/': join(dir, 'out'), '/fixtures/': FIXTURES, '/wasm/': join(ROOT, 'dist', 'browser') },
    });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      const workers: string[] = [];
      page.on('worker', (w) => workers.push(w.url()));
      await page.goto(`${server.url}app/index.html`);
      await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 });
      const got = await page.evaluate(([m, w]) => (window as unknown as { run(m: string, w: string): Promise<{ runtime: { matMul: string; kernel?: { active: boolean } }; dense: number[] }> }).run(m!, w!),
        [`${server.url}fixtures/sharp-m3/`, `${server.url}wasm/`]);
      const err = maxAbsDiff(got.dense, node);
      console.log(`vite app: ${got.runtime.matMul}; kernel worker ${workers.filter((u) => u.includes('kernel-worker')).join(', ')}; dense vs Node max abs error ${err.toExponential(2)}`);
      expect(got.runtime.kernel?.active).toBe(true);
      expect(workers.some((u) => /\/assets\/kernel-worker\.browser-.*\.js$/.test(u))).toBe(true);
      expect(err).toBeLessThanOrEqual(1e-4);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
