/**
 * The explorer from a user's side, in Debian's Chromium (playwright-core): `startExplorer` (what
 * `npm run explorer` runs) serves the page with COOP/COEP; the user loads the bundled fixture, types a
 * query and a passage and runs; the token weights read from the page equal `encode`'s lexical weights in
 * Node on the same checkpoint (within 1e-6), the score cards equal `computeScore`'s; clicking a head
 * ablates it: the views change and equal `runWithHooks` with that head's context zeroed in Node; clicking
 * it again restores the first outputs. No console errors, no tensor left behind between runs, and the
 * views are drawn (not blank canvases). The screenshot's path is printed (docs/explorer-screenshot.png
 * is one of them). Skipped only when /usr/bin/chromium is missing (CI installs the `chromium` package).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { BgeM3 } from '../../src/m3.js';
import { patchHead } from '../../src/attribution/patching.js';
import { layerName } from '../../src/hooks/names.js';
import { startExplorer } from '../../src/serve/explorer.js';
import type { StaticServer } from '../../src/serve/static.js';
import { checkpointDir } from '../helpers/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/explorer/explorer.test.ts: skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const QUERY = 'Wie funktioniert die Suche mit BGE M3 und lexical matching?';
const PASSAGE = 'BGE M3 supports dense retrieval, lexical matching (sparse weights) and multi-vector ColBERT interaction in more than 100 languages.';
const TOL = 1e-6;

type Weights = Record<string, number>;

/** Largest |a − b| over the union of keys (a key missing on one side counts its whole value). */
function maxDiff(a: Weights, b: Weights): number {
  let m = 0;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) m = Math.max(m, Math.abs((a[k] ?? 0) - (b[k] ?? 0)));
  return m;
}

describe.skipIf(!haveChromium)('the explorer in Chromium', () => {
  let server: StaticServer & { page: string };
  let browser: Browser;
  let m3: BgeM3;
  const shots = mkdtempSync(join(tmpdir(), 'bge-m3-explorer-shots-'));

  beforeAll(async () => {
    server = await startExplorer();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    m3 = await BgeM3.load(checkpointDir('sharp-m3'), { backend: 'wasm' });
  });
  afterAll(async () => {
    m3?.dispose();
    await browser?.close();
    await server?.close();
    console.log(`explorer screenshots: ${shots}`);
  });

  /** The lexical weights the page shows for a text: each non-special token id's largest positive weight. */
  const pageWeights = (page: Page, role: 'query' | 'passage'): Promise<Weights> =>
    page.locator(`.tokens[data-role="${role}"] .tok`).evaluateAll((chips) => {
      const w: Record<string, number> = {};
      for (const c of chips as HTMLElement[]) {
        const [id, v] = [c.dataset['id']!, Number(c.dataset['weight'])];
        if (c.dataset['special'] === 'true' || !(v > 0)) continue;
        w[id] = Math.max(w[id] ?? 0, v);
      }
      return w;
    });

  /** Share of a canvas's pixels that are neither blank nor white (a drawn view has many). */
  const inked = (page: Page, selector: string): Promise<number> =>
    page.locator(selector).evaluate((c: HTMLCanvasElement) => {
      if (c.width === 0 || c.height === 0) return 0;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3]! > 0 && (d[i]! < 245 || d[i + 1]! < 245 || d[i + 2]! < 245)) n++;
      return n / (d.length / 4);
    });

  const waitRun = (page: Page, runs: number) => page.waitForSelector(`body[data-runs="${runs}"][data-ready="true"], body[data-error]`, { timeout: 120_000 });

  it('lexical weights typed in the page equal encode\'s in Node; a clicked head is ablated as runWithHooks does', { timeout: 300_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    const problems: string[] = [];
    const notFound: string[] = []; // console errors of 404 answers (Chromium logs each one)
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (m.text().includes('status of 404 (Not Found)')) notFound.push(m.text());
      else problems.push(`console error: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // The loader probes for optional files (model.safetensors's alternatives …): those 404s are expected
    // and show as console errors; any other failed request is a problem.
    const probes: string[] = [];
    page.on('response', (r) => {
      if (r.status() < 400) return;
      const path = new URL(r.url()).pathname;
      const file = path.startsWith('/test/fixtures/sharp-m3/') && r.status() === 404 ? path.slice('/test/fixtures/sharp-m3/'.length) : undefined;
      if (file && !file.includes('/') && !existsSync(join(checkpointDir('sharp-m3'), file))) probes.push(file);
      else problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    await page.goto(server.page);
    await page.waitForSelector('body[data-started="true"]', { timeout: 60_000 });
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);

    // load the bundled fixture (it runs the default texts), then type ours and run
    await page.click('#load');
    await waitRun(page, 1);
    await page.fill('#query', QUERY);
    await page.fill('#passage', PASSAGE);
    await page.click('#run');
    await waitRun(page, 2);
    expect(await page.evaluate(() => document.body.dataset['error'] ?? null)).toBeNull();

    const node = await m3.encode([QUERY, PASSAGE], { returnSparse: true, maxLength: 512 });
    const [q, p] = [await pageWeights(page, 'query'), await pageWeights(page, 'passage')];
    const err = Math.max(maxDiff(q, node.lexicalWeights![0]!), maxDiff(p, node.lexicalWeights![1]!));
    console.log(`explorer: lexical weights, page vs Node encode: max abs error ${err.toExponential(2)} over ${Object.keys(q).length} + ${Object.keys(p).length} ids`);
    expect(Object.keys(q).sort()).toEqual(Object.keys(node.lexicalWeights![0]!).sort());
    expect(Object.keys(p).sort()).toEqual(Object.keys(node.lexicalWeights![1]!).sort());
    expect(err).toBeLessThanOrEqual(TOL);

    // the three scores (and their sums) as computeScore gives them
    const scores = (await m3.computeScore([[QUERY, PASSAGE]]));
    const card = async (name: string) => Number(await page.locator(`.card[data-score="${name}"]`).getAttribute('data-value'));
    const scoreErr = Math.max(
      Math.abs(await card('dense') - scores.dense[0]!), Math.abs(await card('sparse') - scores.sparse[0]!),
      Math.abs(await card('ColBERT') - scores.colbert[0]!), Math.abs(await card('colbert+sparse+dense') - scores['colbert+sparse+dense'][0]!));
    console.log(`explorer: scores, page vs Node computeScore: max abs error ${scoreErr.toExponential(2)}`);
    expect(scoreErr).toBeLessThanOrEqual(1e-5);

    // every view is drawn: attention heatmap, head view, ColBERT alignment, sparse lens, head thumbnails
    for (const sel of ['#attn-heatmap', '#head-view', '#colbert-heatmap', '#lens-heatmap-0', '#lens-heatmap-1', '#head-grid canvas[data-head="0"]']) {
      const share = await inked(page, sel);
      expect(share, `${sel} is blank`).toBeGreaterThan(0.02);
    }
    expect(await page.locator('#lexical-table tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('#colbert-matches tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('#norm-chart canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('button.ablate').count()).toBe(m3.config.num_hidden_layers * m3.config.num_attention_heads);
    await page.screenshot({ path: join(shots, 'explorer.png'), fullPage: false });
    const lensBefore = await page.locator('#lens-heatmap-0').evaluate((c: HTMLCanvasElement) => c.toDataURL());

    // click layer 0 head 1: ablated in every view, as runWithHooks with that head's context zeroed
    const [layer, head] = [0, 1];
    await page.click(`button.ablate[data-layer="${layer}"][data-head="${head}"]`);
    await waitRun(page, 3);
    expect(await page.getAttribute('body', 'data-ablated')).toBe(`${layer}:${head}`);
    const hooks = { [layerName(layer, 'attention.self.hook_out')]: patchHead(head, m3.config.num_attention_heads, undefined) };
    const ablated = await m3.runWithHooks([QUERY], hooks, { maxLength: 512 });
    const qa = await pageWeights(page, 'query');
    const changed = maxDiff(qa, q);
    const ablErr = maxDiff(qa, ablated.lexicalWeights![0]!);
    console.log(`explorer: head L${layer}H${head} ablated: query weights moved by up to ${changed.toExponential(2)}; page vs Node runWithHooks: max abs error ${ablErr.toExponential(2)}`);
    expect(changed).toBeGreaterThan(1e-3);
    expect(ablErr).toBeLessThanOrEqual(TOL);
    expect(await page.locator('#lens-heatmap-0').evaluate((c: HTMLCanvasElement) => c.toDataURL())).not.toBe(lensBefore);
    // controls, ablation grid, scores, tokens, lexical match, ColBERT alignment and attention (the lens and norms are below)
    await page.screenshot({ path: join(shots, 'explorer-ablated.png'), fullPage: true, clip: { x: 0, y: 0, width: 1300, height: 2280 } });

    // clicking it again restores the model: the first run's weights, bit for bit
    await page.click(`button.ablate[data-layer="${layer}"][data-head="${head}"]`);
    await waitRun(page, 4);
    expect(await pageWeights(page, 'query')).toEqual(q);

    // no tensor left behind by a run (the model's own weights stay)
    const tensors = await page.evaluate(() => (window as unknown as { explorer: { state: { tensors: number[] } } }).explorer.state.tensors);
    console.log(`explorer: tensors alive after each run: ${tensors.join(', ')}`);
    expect(new Set(tensors.slice(1)).size).toBe(1);
    console.log(`explorer: probes for absent optional files: ${probes.join(', ')}`);
    expect(notFound.length).toBe(probes.length);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('loads a folder picked on disk (File objects) and shows the same weights as encode', { timeout: 120_000 }, async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const served: string[] = []; // model files asked of the server: none, they come from the picked folder
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/test/')) served.push(r.url()); });
    await page.goto(server.page);
    await page.waitForSelector('body[data-started="true"]', { timeout: 60_000 });
    await page.selectOption('#model-source', 'folder');
    await page.setInputFiles('#model-files', checkpointDir('sharp-m3')); // a webkitdirectory input: the folder's files
    await page.click('#load');
    await waitRun(page, 1);
    expect(await page.evaluate(() => document.body.dataset['error'] ?? null)).toBeNull();
    const [query, passage] = [await page.inputValue('#query'), await page.inputValue('#passage')];
    const node = await m3.encode([query, passage], { returnSparse: true, maxLength: 512 });
    const err = Math.max(maxDiff(await pageWeights(page, 'query'), node.lexicalWeights![0]!), maxDiff(await pageWeights(page, 'passage'), node.lexicalWeights![1]!));
    console.log(`explorer: picked folder: lexical weights, page vs Node encode: max abs error ${err.toExponential(2)}`);
    expect(Object.keys(await pageWeights(page, 'passage')).length).toBeGreaterThan(3);
    expect(err).toBeLessThanOrEqual(TOL);
    expect(await page.locator('#meta').textContent()).toContain('sharp-m3');
    expect(served).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('tells a bad model URL plainly in the page', { timeout: 120_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(server.page);
    await page.waitForSelector('body[data-started="true"]', { timeout: 60_000 });
    await page.selectOption('#model-source', 'url');
    await page.fill('#model-url', `${server.url}test/fixtures/no-such-model/`);
    await page.click('#load');
    await page.waitForSelector('body[data-error]', { timeout: 60_000 });
    const status = await page.locator('#status').textContent();
    console.log(`explorer: bad URL: ${status}`);
    expect(status).toContain('no-such-model/');
    expect(status).toContain('404');
    await page.close();
  });
});
