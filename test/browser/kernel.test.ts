/**
 * The FMA kernel in a page (its pool on Web Workers, kernels/pool.ts + host/kernel-host.browser.ts):
 * in a crossOriginIsolated page it runs (runtimeInfo says so) and many batches of equal and unequal
 * lengths, from two encode calls at once, equal Node's outputs with no tensor left behind; when its
 * worker's file does not load (a 404) the page says so and runs XNNPACK, with the same outputs and
 * no hang; in a page that is not crossOriginIsolated XNNPACK runs and runtimeInfo says why. (Parity
 * on all three fixture checkpoints, kernel on and off, is browser.test.ts's.) Max errors are printed.
 * Skipped only when /usr/bin/chromium is missing (CI installs the `chromium` package).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { BgeM3, type EncodeOutput } from '../../src/m3.js';
import { startStaticServer, type StaticServer } from '../../src/serve/static.js';
import { checkpointDir, FIXTURES } from '../helpers/fixtures.js';
import { ErrorLog, loadCases, maxAbsDiff, sparseMaxAbsDiff } from '../helpers/reference.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const ROOT = join(FIXTURES, '..', '..');
const TOL = 1e-4; // as browser.test.ts: the heads' tolerance against the float64 reference
const OUTPUTS = { returnDense: true, returnSparse: true, returnColbert: true };

const cases = loadCases();
/** Every case (unequal lengths, up to 3034 tokens). */
const unequal = cases.map((c) => c.input_ids);
/** Cases of at least 20 tokens cut to 20 (`</s>` last): rows of equal length. */
const equal = cases.filter((c) => c.input_ids.length >= 20).map((c) => [...c.input_ids.slice(0, 19), 2]);

interface Output { dense: number[][]; sparse: Record<string, number>[]; colbert: number[][] }
interface Runtime { crossOriginIsolated: boolean; matMul: string; kernel?: { active: boolean; threads?: number } }

/** What the page returns of an EncodeOutput (typed arrays as plain arrays). */
const plain = (o: EncodeOutput): Output => ({
  dense: o.denseVecs!.map((v) => Array.from(v)), sparse: o.lexicalWeights!, colbert: o.colbertVecs!.map((c) => Array.from(c.data)),
});

/** Page outputs against Node's, each within TOL; prints the max errors. */
function compare(label: string, got: Output, node: Output): void {
  const log = new ErrorLog(`${label}: page vs Node`);
  expect(got.dense.length).toBe(node.dense.length);
  got.dense.forEach((_, i) => {
    expect(log.add('dense', maxAbsDiff(got.dense[i]!, node.dense[i]!)), `row ${i}`).toBeLessThanOrEqual(TOL);
    expect(log.add('lexical weights', sparseMaxAbsDiff(got.sparse[i]!, node.sparse[i]!)), `row ${i}`).toBeLessThanOrEqual(TOL);
    expect(log.add('colbert', maxAbsDiff(got.colbert[i]!, node.colbert[i]!)), `row ${i}`).toBeLessThanOrEqual(TOL);
  });
  log.print();
}

describe.skipIf(!haveChromium)('the FMA kernel in Chromium', () => {
  let browser: Browser;
  let isolated: StaticServer;
  let plainServer: StaticServer;
  const node: Record<string, Output> = {};

  beforeAll(async () => {
    const m3 = await BgeM3.load(checkpointDir('sharp-m3'), { backend: 'wasm' });
    node.unequal = plain(await m3.encode({ inputIds: unequal }, { ...OUTPUTS, batchSize: 3 }));
    node.equal = plain(await m3.encode({ inputIds: equal }, { ...OUTPUTS, batchSize: 4 }));
    m3.dispose();
    const mounts = { '/dist/': join(ROOT, 'dist'), '/test/': join(ROOT, 'test') };
    isolated = await startStaticServer({ mounts, isolate: true });
    plainServer = await startStaticServer({ mounts, isolate: false });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
    await isolated?.close();
    await plainServer?.close();
  });

  async function openPage(server: StaticServer, setup?: (page: Page) => Promise<void>): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await setup?.(page);
    await page.goto(`${server.url}test/browser/page.html`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    return { page, errors };
  }

  /** Loads sharp-m3 in the page and runs the two encode calls at once (Promise.all): their outputs, the tensors left, the runtime. */
  const encodeTwice = (page: Page, server: StaticServer) => page.evaluate(async ([model, a, b, opts]) => {
    const bge = (window as unknown as { bge: any }).bge;
    const m3 = await bge.BgeM3.load(model, { backend: 'wasm' });
    try {
      const out = (o: any) => ({ dense: o.denseVecs.map((v: Float32Array) => Array.from(v)), sparse: o.lexicalWeights, colbert: o.colbertVecs.map((c: any) => Array.from(c.data)) });
      const before = bge.tf.memory().numTensors;
      const [x, y] = await Promise.all([m3.encode({ inputIds: a }, { ...opts, batchSize: 3 }), m3.encode({ inputIds: b }, { ...opts, batchSize: 4 })]);
      return { unequal: out(x), equal: out(y), leaked: bge.tf.memory().numTensors - before, runtime: bge.runtimeInfo() as Runtime };
    } finally {
      m3.dispose();
    }
  }, [`${server.url}test/fixtures/sharp-m3/`, unequal, equal, OUTPUTS] as const);

  it('runs in a crossOriginIsolated page: many batches, equal and unequal lengths, two calls at once, equal to Node; no leak', { timeout: 180_000 }, async () => {
    const { page, errors } = await openPage(isolated);
    const got = await encodeTwice(page, isolated);
    console.log(`isolated page: ${got.runtime.matMul}`);
    expect(got.runtime.kernel?.active).toBe(true);
    expect(got.runtime.kernel?.threads).toBeGreaterThan(1);
    expect(got.runtime.matMul).toMatch(/^relaxed-SIMD FMA GEMM \(src\/kernels\), \d threads$/);
    compare('sharp-m3 kernel, unequal lengths, batches of 3', got.unequal, node.unequal!);
    compare('sharp-m3 kernel, equal lengths, batches of 4', got.equal, node.equal!);
    expect(got.leaked).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("says so and runs XNNPACK when the kernel's worker file does not load (404), with the same outputs", { timeout: 180_000 }, async () => {
    const { page, errors } = await openPage(isolated, (p) => p.route('**/kernel-worker.browser.js', (r) => r.fulfill({ status: 404, body: 'gone' })));
    const got = await encodeTwice(page, isolated);
    console.log(`worker 404: ${got.runtime.matMul}`);
    expect(got.runtime.kernel?.active).toBe(false);
    expect(got.runtime.matMul).toMatch(/^XNNPACK matMul \(FMA kernel off: its worker pool did not start: GEMM kernel: worker 1 \(http:\/\/[^)]*\/dist\/browser\/kernel-worker\.browser\.js\): /);
    compare('sharp-m3 XNNPACK (worker 404)', got.unequal, node.unequal!);
    compare('sharp-m3 XNNPACK (worker 404), equal lengths', got.equal, node.equal!);
    expect(got.leaked).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('runs inside a Web Worker too (where the calling thread may block), equal to Node', { timeout: 180_000 }, async () => {
    const { page, errors } = await openPage(isolated);
    const got = await page.evaluate(([model, ids]) => new Promise<{ dense?: number[][]; runtime?: Runtime; error?: string }>((resolve) => {
      const w = new Worker('/test/browser/model-worker.js', { type: 'module' });
      w.onmessage = (e) => { resolve(e.data); w.terminate(); };
      w.onerror = (e) => resolve({ error: `model-worker.js: ${e.message}` });
      w.postMessage({ model, inputIds: ids });
    }), [`${isolated.url}test/fixtures/sharp-m3/`, equal] as const);
    expect(got.error).toBeUndefined();
    console.log(`in a Web Worker: ${got.runtime!.matMul}`);
    expect(got.runtime!.kernel?.active).toBe(true);
    const log = new ErrorLog('sharp-m3 kernel in a Web Worker: page vs Node');
    got.dense!.forEach((v, i) => expect(log.add('dense', maxAbsDiff(v, node.equal!.dense[i]!)), `row ${i}`).toBeLessThanOrEqual(TOL));
    expect(got.dense!.length).toBe(equal.length);
    log.print();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says why XNNPACK runs in a page that is not crossOriginIsolated', { timeout: 180_000 }, async () => {
    const { page } = await openPage(plainServer);
    const got = await encodeTwice(page, plainServer);
    console.log(`plain page: ${got.runtime.matMul}`);
    expect(got.runtime.crossOriginIsolated).toBe(false);
    expect(got.runtime.kernel?.active).toBe(false);
    expect(got.runtime.matMul).toMatch(/^XNNPACK matMul \(FMA kernel off: the page is not crossOriginIsolated \(serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp\)/);
    compare('sharp-m3 XNNPACK (not isolated)', got.equal, node.equal!);
    expect(got.leaked).toBe(0);
    await page.close();
  });
});
