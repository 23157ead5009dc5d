/**
 * The package in a web page. The browser entry bundles with no `node:` import; a plain static page
 * (test/browser/page.html, no bundler) imports dist/browser/index.js from a local server that sends
 * COOP/COEP, loads each fixture checkpoint by URL, and its dense, lexical and ColBERT outputs equal
 * Node's (same token ids, padded batches of 8, every case) and the float64 reference, on the wasm
 * backend threaded (crossOriginIsolated) and single-threaded; the torch.save files read over HTTP
 * ranges; File objects; load errors told plainly. Max errors are printed.
 * Skipped only when /usr/bin/chromium is missing (CI installs the `chromium` package).
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { BgeM3, type EncodeOutput } from '../../src/m3.js';
import type { WeightLoadStats } from '../../src/runtime/heap-load.js';
import { etagOf, serveFile, startStaticServer, type StaticServer } from '../../src/serve/static.js';
import { CHECKPOINTS, checkpointDir, FIXTURES, type Checkpoint } from '../helpers/fixtures.js';
import { ErrorLog, loadCases, maxAbsDiff, Reference, sparseMaxAbsDiff } from '../helpers/reference.js';
// @ts-expect-error: a plain .mjs build script, no typings
import { bundleBrowser, haveWebgpu } from '../../scripts/build-browser.mjs';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/browser/browser.test.ts: skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const ROOT = join(FIXTURES, '..', '..');
const webgpu = haveWebgpu() as boolean;
if (!webgpu) console.warn('test/browser/browser.test.ts: webgpu tests skipped: @tensorflow/tfjs-backend-webgpu is not installed (npm ci)');
const TOL = 1e-4; // the heads' tolerance against the float64 reference (test/model/parity.test.ts)
const cases = loadCases();
const inputIds = cases.map((c) => c.input_ids);

interface PageOutput {
  inputIds: number[][];
  dense: number[][];
  sparse: Record<string, number>[];
  colbert: { rows: number; dim: number; data: number[] }[];
  tokens: Record<string, number>;
  progress: [number, number][];
  leaked: number;
  runtime: { backend: string; crossOriginIsolated: boolean; wasmThreads: { requested: number; actual?: number; fallbackReason?: string }; matMul: string; kernel?: { active: boolean } };
  weightLoad: WeightLoadStats;
}

describe('the browser entry bundles for browsers', () => {
  it('has no node: import (esbuild, platform browser, through the package.json browser field)', async () => {
    const meta = await bundleBrowser(join(ROOT, 'dist', 'browser.js'), join(mkdtempSync(join(tmpdir(), 'bge-m3-bundle-')), 'index.js'), false);
    const inputs = Object.keys(meta.inputs);
    expect(inputs.filter((k) => k.startsWith('dist/') && k.includes('/host/') && !k.includes('.browser.'))).toEqual([]);
    expect(inputs.some((k) => k.endsWith('dist/m3.js'))).toBe(true);
  });
});

describe.skipIf(!haveChromium)('bge-m3-tfjs in Chromium', () => {
  let browser: Browser;
  let isolated: StaticServer;
  let plain: StaticServer;
  let changes = 0;
  const requests: string[] = []; // paths asked of the servers
  /** Faults: a folder without model.safetensors (so pytorch_model.bin is read), a cut body, a file that changes. */
  const intercept = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    let m = /^\/torch\/([\w-]+)\/(.*)$/.exec(path);
    if (m) {
      if (m[2] === 'model.safetensors') res.writeHead(404).end();
      else serveFile(req, res, join(FIXTURES, m[1]!, m[2]!));
      return true;
    }
    m = /^\/cut\/([\w-]+)\/(.*)$/.exec(path);
    if (m && m[2] === 'model.safetensors' && req.headers.range !== 'bytes=0-0') {
      // Promise every byte asked for, send a third of them, then drop the connection.
      const r = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '')!;
      const n = Number(r[2]) - Number(r[1]) + 1;
      const st = statSync(join(FIXTURES, m[1]!, m[2]!));
      res.writeHead(206, { 'Content-Length': String(n), 'Content-Range': `bytes ${r[1]}-${r[2]}/${st.size}`, ETag: etagOf(st) });
      res.write(Buffer.alloc(Math.floor(n / 3)));
      setTimeout(() => res.destroy(), 50);
      return true;
    }
    if (m) { serveFile(req, res, join(FIXTURES, m[1]!, m[2]!)); return true; }
    m = /^\/changing\/([\w-]+)\/(.*)$/.exec(path);
    if (m) {
      // The weights are re-uploaded after the first range request: every later answer has a new ETag.
      if (m[2] === 'model.safetensors') {
        const etag = `"v${changes++ === 0 ? 1 : 2}"`;
        const orig = res.writeHead.bind(res);
        res.writeHead = ((status: number, headers: Record<string, string>) => orig(status, { ...headers, ETag: etag })) as typeof res.writeHead;
      }
      serveFile(req, res, join(FIXTURES, m[1]!, m[2]!));
      return true;
    }
    return false;
  };

  beforeAll(async () => {
    const mounts = { '/dist/': join(ROOT, 'dist'), '/test/': join(ROOT, 'test') };
    isolated = await startStaticServer({ mounts, isolate: true, intercept });
    plain = await startStaticServer({ mounts, isolate: false, intercept });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await isolated?.close();
    await plain?.close();
  });

  async function openPage(server: StaticServer): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}test/browser/page.html`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    return { page, errors };
  }

  const encodeInPage = (page: Page, model: string, opts: object, ids: number[][] = inputIds): Promise<PageOutput> =>
    page.evaluate(([m, o, i]) => (window as unknown as { bge: { encodeAll(...a: unknown[]): Promise<PageOutput> } }).bge.encodeAll(m, o, i), [model, opts, ids] as const);

  /** The page's outputs against Node's (same ids) and the float64 reference; returns the log. */
  async function compare(label: string, got: PageOutput, node: EncodeOutput, ref: Reference, only = cases): Promise<void> {
    const vsNode = new ErrorLog(`${label}: page vs Node`);
    const vsRef = new ErrorLog(`${label}: page vs float64 reference`);
    expect(got.inputIds).toEqual(only.map((c) => c.input_ids));
    for (const [i, c] of only.entries()) {
      expect(vsNode.add('dense', maxAbsDiff(got.dense[i]!, node.denseVecs![i]!)), c.id).toBeLessThanOrEqual(TOL);
      expect(vsNode.add('lexical weights', sparseMaxAbsDiff(got.sparse[i]!, node.lexicalWeights![i]!)), c.id).toBeLessThanOrEqual(TOL);
      expect(got.colbert[i]!.rows).toBe(node.colbertVecs![i]!.rows);
      expect(vsNode.add('colbert', maxAbsDiff(got.colbert[i]!.data, node.colbertVecs![i]!.data)), c.id).toBeLessThanOrEqual(TOL);
      expect(vsRef.add('dense', maxAbsDiff(got.dense[i]!, (await ref.tensor(c.id, 'dense_head.hook_out')).data)), c.id).toBeLessThanOrEqual(TOL);
      expect(vsRef.add('lexical weights', sparseMaxAbsDiff(got.sparse[i]!, ref.json.cases[c.id]!.lexical_weights)), c.id).toBeLessThanOrEqual(TOL);
      expect(vsRef.add('colbert', maxAbsDiff(got.colbert[i]!.data, (await ref.tensor(c.id, 'colbert_head.hook_out')).data)), c.id).toBeLessThanOrEqual(TOL);
    }
    expect(got.leaked).toBe(0);
    vsNode.print();
    vsRef.print();
  }

  describe.each(CHECKPOINTS)('%s by URL on wasm', (ckpt: Checkpoint) => {
    let node: EncodeOutput;
    let ref: Reference;
    beforeAll(async () => {
      const m3 = await BgeM3.load(checkpointDir(ckpt), { backend: 'wasm' });
      node = await m3.encode({ inputIds }, { returnDense: true, returnSparse: true, returnColbert: true, batchSize: 8 });
      m3.dispose();
      ref = await Reference.open(ckpt);
    });
    afterAll(() => ref?.close());

    it('threaded (crossOriginIsolated page) equals Node and the reference', async () => {
      const { page, errors } = await openPage(isolated);
      const got = await encodeInPage(page, `${isolated.url}test/fixtures/${ckpt}/`, { backend: 'wasm' });
      console.log(`${ckpt} threaded page: ${JSON.stringify(got.runtime)}`);
      expect(got.runtime.crossOriginIsolated).toBe(true);
      expect(got.runtime.backend).toBe('wasm');
      expect(got.runtime.wasmThreads.requested).toBeGreaterThan(1);
      expect(got.runtime.wasmThreads.actual).toBe(got.runtime.wasmThreads.requested);
      expect(got.runtime.kernel?.active, got.runtime.matMul).toBe(true); // the FMA kernel, on Web Workers
      await compare(`${ckpt} wasm, threaded build + FMA kernel`, got, node, ref);
      // Progress: bytes grow to the weight files' total.
      const [done, total] = got.progress.at(-1)!;
      expect(done).toBe(total);
      expect(total).toBeGreaterThan(2_000_000);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('single-threaded (no COOP/COEP) equals Node and the reference', async () => {
      const { page, errors } = await openPage(plain);
      const got = await encodeInPage(page, `${plain.url}test/fixtures/${ckpt}/`, { backend: 'wasm' });
      console.log(`${ckpt} single-threaded page: ${JSON.stringify(got.runtime)}`);
      expect(got.runtime.crossOriginIsolated).toBe(false);
      expect(got.runtime.wasmThreads.actual).toBe(1);
      expect(got.runtime.matMul).toMatch(/^XNNPACK matMul \(FMA kernel off: the page is not crossOriginIsolated/);
      await compare(`${ckpt} wasm, one thread`, got, node, ref);
      expect(errors).toEqual([]);
      await page.close();
    });
  });

  describe.skipIf(!webgpu).each(['tiny-m3', 'sharp-m3'] as const)('%s by URL on webgpu (SwiftShader)', (ckpt) => {
    // Every case but the 3034-token one: SwiftShader emulates the GPU on the CPU (minutes for that one).
    const short = cases.filter((c) => c.input_ids.length <= 512);
    it('is within 1e-4 of the float64 reference (and of Node on wasm)', { timeout: 600_000 }, async () => {
      const m3 = await BgeM3.load(checkpointDir(ckpt), { backend: 'wasm' });
      const node = await m3.encode({ inputIds: short.map((c) => c.input_ids) }, { returnDense: true, returnSparse: true, returnColbert: true, batchSize: 8 });
      m3.dispose();
      const ref = await Reference.open(ckpt);
      const { chromium } = await import('playwright-core');
      const gpu = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'],
      });
      try {
        const page = await gpu.newPage();
        await page.goto(`${isolated.url}test/browser/page.html`);
        await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
        const t0 = Date.now();
        const got = await encodeInPage(page, `${isolated.url}test/fixtures/${ckpt}/`, { backend: 'webgpu' }, short.map((c) => c.input_ids));
        console.log(`${ckpt} webgpu page: ${JSON.stringify(got.runtime)}, load + encode of ${short.length} cases ${Date.now() - t0} ms`);
        expect(got.runtime.backend).toBe('webgpu');
        await compare(`${ckpt} webgpu (SwiftShader)`, got, node, ref, short);
      } finally {
        await gpu.close();
        await ref.close();
      }
    });
  });

  it('reads pytorch_model.bin + the .pt heads over HTTP ranges (no model.safetensors) and from picked File objects', async () => {
    const m3 = await BgeM3.load(checkpointDir('tiny-m3'), { backend: 'wasm' });
    const node = await m3.encode({ inputIds }, { returnDense: true, returnSparse: true, returnColbert: true, batchSize: 8 });
    m3.dispose();
    const ref = await Reference.open('tiny-m3');
    const { page } = await openPage(isolated);
    const torch = await encodeInPage(page, `${isolated.url}torch/tiny-m3/`, { backend: 'wasm' });
    await compare('tiny-m3 pytorch_model.bin by URL', torch, node, ref);
    const dir = checkpointDir('tiny-m3');
    await page.setInputFiles('#files', ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'pytorch_model.bin', 'colbert_linear.pt', 'sparse_linear.pt'].map((f) => join(dir, f)));
    const picked = await encodeInPage(page, 'picked', { backend: 'wasm' });
    await compare('tiny-m3 picked files', picked, node, ref);
    // Both went straight into the wasm heap: every tensor but the F16 sparse head (converted on the host).
    for (const [label, got] of [['URL', torch], ['picked files', picked]] as const) {
      console.log(`tiny-m3 pytorch_model.bin, ${label}: ${JSON.stringify(got.weightLoad)}`);
      expect(got.weightLoad.hostTensors.map((t) => t.name), label).toEqual(['sparse_linear.weight', 'sparse_linear.bias']);
      expect(got.weightLoad.direct.tensors, label).toBe(5 + 16 * 2 + 2);
    }
    await ref.close();
    await page.close();
  });

  it('opt-in Cache API cache: a second load fetches no model file, and gives the same outputs', async () => {
    const { page } = await openPage(isolated);
    const model = `${isolated.url}test/fixtures/sharp-m3/`;
    const ids = inputIds.slice(0, 8);
    requests.length = 0;
    const first = await encodeInPage(page, model, { backend: 'wasm', cache: 'bge-m3-test' }, ids);
    const fetched = requests.filter((p) => p.startsWith('/test/fixtures/sharp-m3/'));
    expect(fetched).toContain('/test/fixtures/sharp-m3/model.safetensors');
    requests.length = 0;
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    const second = await encodeInPage(page, model, { backend: 'wasm', cache: 'bge-m3-test' }, ids);
    // The files that exist (the probes for absent ones, colbert_linear.safetensors …, still ask the server and get 404).
    const again = requests.filter((p) => p.startsWith('/test/fixtures/sharp-m3/') && existsSync(join(FIXTURES, 'sharp-m3', p.split('/').pop()!)));
    console.log(`cache: first load fetched ${fetched.length} requests for the model folder, the reload ${again.length} for its weight files`);
    expect(again).toEqual([]);
    expect(second.dense).toEqual(first.dense);
    expect(second.sparse).toEqual(first.sparse);
    await page.close();
  });

  it('tells load errors plainly: 404, a cut body, a file changed between two ranges', async () => {
    const { page } = await openPage(isolated);
    const loadError = (model: string) => page.evaluate((m) => (window as unknown as { bge: { loadError(m: string, o: object): Promise<string | null> } }).bge.loadError(m, { backend: 'wasm' }), model);
    const missing = await loadError(`${isolated.url}test/fixtures/no-such-model/`);
    console.log(`404: ${missing}`);
    expect(missing).toContain(`${isolated.url}test/fixtures/no-such-model/tokenizer.json`);
    expect(missing).toContain('HTTP 404 Not Found');
    const cut = await loadError(`${isolated.url}cut/tiny-m3/`);
    console.log(`cut body: ${cut}`);
    expect(cut).toMatch(/model\.safetensors: .*(connection broke after \d+ of \d+ bytes|body ended after \d+ of \d+ bytes)/);
    changes = 0;
    const changed = await loadError(`${isolated.url}changing/tiny-m3/`);
    console.log(`changed file: ${changed}`);
    expect(changed).toMatch(/model\.safetensors: .*changed on the server between two range requests/);
    expect(await loadError('test/fixtures/tiny-m3')).toContain("must end in '/'");
    await page.close();
  });
});
