/**
 * The inspection page in a real browser (Debian's Chromium through playwright-core): it loads with no
 * console errors and no network, shows the tokens, switching layer or head redraws the heatmap, the
 * head view reacts to hover, and a 512-token page renders. Screenshots go to a temp dir (path printed).
 * Skipped only when /usr/bin/chromium is missing (CI installs the `chromium` package).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { BgeM3 } from '../../src/m3.js';
import { buildReport, type InspectReport } from '../../src/inspect/report.js';
import { renderPage } from '../../src/inspect/page.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases } from '../helpers/reference.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/inspect/page.test.ts: skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const cases = new Map(loadCases().map((c) => [c.id, c]));
const QUERY = 'What is BGE M3?';
const PASSAGE = 'BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector interaction.';

describe.skipIf(!haveChromium)('inspection page in Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bge-m3-inspect-page-'));
  const shots = mkdtempSync(join(tmpdir(), 'bge-m3-inspect-shots-'));
  let browser: BrowserContext;
  let report: InspectReport;
  let longReport: InspectReport;
  let subsetReport: InspectReport;
  let lensReport: InspectReport;
  let attrReport: InspectReport;
  let attrDirect: Awaited<ReturnType<BgeM3['attribute']>>;

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    // Playwright takes the profile directory as launchPersistentContext's argument (it rejects a
    // --user-data-dir flag in args); an empty temp dir, so no state leaks between runs.
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'bge-m3-chromium-')), {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1300, height: 900 },
    });
    const sharp = await BgeM3.load(checkpointDir('sharp-m3'));
    report = await buildReport(sharp, QUERY, PASSAGE, { modelName: 'sharp-m3' });
    subsetReport = await buildReport(sharp, QUERY, undefined, { modelName: 'sharp-m3', layers: [1] });
    lensReport = await buildReport(sharp, QUERY, PASSAGE, { modelName: 'sharp-m3', lens: 'm3' });
    attrReport = await buildReport(sharp, QUERY, PASSAGE, { modelName: 'sharp-m3', attribute: 'is' });
    attrDirect = await sharp.attribute(QUERY, { target: '▁is' });
    sharp.dispose();
    const small = await BgeM3.load(checkpointDir('small-m3'));
    longReport = await buildReport(small, QUERY, cases.get('long_3k')!.text, { modelName: 'small-m3', maxLength: 512 });
    small.dispose();
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
    console.log(`inspection page screenshots: ${shots}`);
  });

  /** Opens a report's page; collects console errors, page errors and any non-file request. */
  async function open(r: InspectReport, name: string): Promise<{ page: Page; problems: string[] }> {
    const file = join(dir, `${name}.html`);
    writeFileSync(file, renderPage(r));
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (req) => {
      if (!/^(file|data|blob):/.test(req.url())) problems.push(`network request: ${req.url()}`);
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('body[data-ready="true"], body[data-error]', { timeout: 30_000 });
    expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
    return { page, problems };
  }

  const heatmap = (page: Page) => page.evaluate(() => (document.getElementById('attn-heatmap') as HTMLCanvasElement).toDataURL());
  const rendered = (page: Page, key: string) => page.waitForSelector(`#attn-heatmap[data-rendered="${key}"]`, { timeout: 10_000 });

  it('loads cleanly and shows the tokens, scores, lexical table and ColBERT matches', async () => {
    const { page, problems } = await open(report, 'pair');
    for (const [role, t] of [['query', report.texts[0]!], ['passage', report.texts[1]!]] as const) {
      const chips = await page.locator(`.tokens[data-role="${role}"] .tok`).allTextContents();
      expect(chips).toHaveLength(t.tokens.length);
      expect(chips.join('').replace(/\s/g, '')).toContain('BGE');
    }
    expect(await page.locator('.card[data-score="dense"] .value').textContent()).toBe(report.pair!.scores.dense.toFixed(4));
    expect(await page.locator('#lexical-table tbody tr').count()).toBe(report.pair!.lexical.terms.length);
    expect(await page.locator('#colbert-matches tbody tr').count()).toBe(report.pair!.colbert.queryRows);
    // hovering a query token links its ColBERT match in the passage
    await page.locator('.tokens[data-role="query"] .tok').nth(5).hover();
    expect(await page.locator('.tokens[data-role="passage"] .tok.linked').count()).toBe(1);
    expect(await page.locator('#tip').textContent()).toContain('sparse weight');
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(shots, 'inspect-sharp-m3.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('switching layer and head redraws the attention heatmap', async () => {
    const { page, problems } = await open(report, 'switch');
    const T = report.texts[1]!.tokens.length;
    await rendered(page, '1:0:-1'); // passage, layer 0, mean of heads
    const first = await heatmap(page);
    await page.selectOption('#sel-layer', '1');
    await rendered(page, '1:1:-1');
    const layer1 = await heatmap(page);
    expect(layer1).not.toBe(first);
    await page.selectOption('#sel-head', '2');
    await rendered(page, '1:1:2');
    const head2 = await heatmap(page);
    expect(head2).not.toBe(layer1);
    await page.locator('#head-grid canvas[data-head="0"]').click(); // a thumbnail selects its head
    await rendered(page, '1:1:0');
    expect(await page.locator('#sel-head').inputValue()).toBe('0');
    await page.selectOption('#sel-text', '0');
    await rendered(page, '0:1:0');
    expect(await page.locator('#attn-title').textContent()).toContain('query');
    await page.selectOption('#sel-text', '1');
    await page.selectOption('#sel-head', '2');
    await rendered(page, '1:1:2');
    expect(await heatmap(page)).toBe(head2); // same view, same pixels
    expect(await page.locator('#head-grid canvas').count()).toBe(report.model.heads + 1);

    // head view: hovering a token on the left focuses its links
    const view = page.locator('#head-view');
    const before = await view.evaluate((c: HTMLCanvasElement) => c.toDataURL());
    const box = (await view.boundingBox())!;
    await page.mouse.move(box.x + 60, box.y + 4 + 17 * 3.5);
    expect(await view.getAttribute('data-focus')).toBe('3');
    expect(await view.evaluate((c: HTMLCanvasElement) => c.toDataURL())).not.toBe(before);
    expect(await page.locator('#tip').textContent()).toContain('attends to');
    expect(T).toBeGreaterThan(3);
    await page.locator('#attention').screenshot({ path: join(shots, 'inspect-attention.png') });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('a query alone with one stored layer: no pair sections, that layer only', async () => {
    const { page, problems } = await open(subsetReport, 'subset');
    await rendered(page, '0:1:-1');
    expect(await page.locator('#sel-layer option').allTextContents()).toEqual(['layer 1']);
    expect(await page.locator('#scores, #lexical, #colbert').count()).toBe(0);
    expect(await page.locator('#attention').textContent()).toContain('stores layers 1 of 2');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('--attribute: the query token\'s head heatmap, layer table and token row are m3.attribute\'s numbers', async () => {
    expect(report.attribution).toBeUndefined();
    const a = attrReport.attribution!;
    expect(a.target!.token).toBe('▁is');
    expect(a.value).toBeGreaterThan(0); // a weight the ReLU lets through, so the heads are not all 0
    expect(a.sides[0]!.heads.flat().some((x) => x !== 0)).toBe(true);
    expect(a.sides[0]!.heads).toEqual(attrDirect.sides[0]!.heads);
    expect(a.sides[0]!.tokenAttributions).toEqual(attrDirect.sides[0]!.tokenAttributions);
    const { page, problems } = await open(attrReport, 'attribution');
    expect(await page.locator('#attribution-title').textContent()).toContain(`weight ${a.value.toFixed(4)}`);
    const cells = await page.locator('#attribution-layers tr').allTextContents();
    expect(cells).toHaveLength(1 + a.sides[0]!.mlp.length);
    expect(cells[2]).toContain(a.sides[0]!.mlp[1]!.toFixed(4));
    for (const id of ['attribution-heads', 'attribution-tokens']) {
      const blank = await page.evaluate((i) => {
        const c = document.getElementById(i) as HTMLCanvasElement;
        const b = document.createElement('canvas');
        [b.width, b.height] = [c.width, c.height];
        return c.toDataURL() === b.toDataURL();
      }, id);
      expect(blank, id).toBe(false);
    }
    const box = (await page.locator('#attribution-heads').boundingBox())!;
    await page.locator('#attribution-heads').hover({ position: { x: box.width - 5, y: box.height - 5 } });
    expect(await page.locator('#tip').textContent()).toMatch(/^layer 1 head 3: /);
    await page.locator('#attribution').screenshot({ path: join(shots, 'inspect-attribution.png') });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('--lens: a layers × tokens heatmap per text whose last row is the page\'s own sparse weights', async () => {
    expect(report.lens).toBeUndefined();
    const lens = lensReport.lens!;
    expect(lens.map((l) => l.layers.length)).toEqual([3, 3]); // embeddings + 2 layers
    let maxErr = 0;
    lens.forEach((l, ti) => {
      const tokens = lensReport.texts[ti]!.tokens;
      expect(l.tokens).toEqual(tokens.map((t) => t.token));
      tokens.forEach((t, j) => { maxErr = Math.max(maxErr, Math.abs(l.weights.at(-1)![j]! - t.weight)); });
    });
    console.log(`lens last row vs sparse_head.hook_out on the page: max abs err ${maxErr.toExponential(2)}`);
    expect(maxErr).toBeLessThan(1e-6);
    const { page, problems } = await open(lensReport, 'lens');
    expect(await page.locator('#lens canvas').count()).toBe(2);
    const blank = await page.evaluate(() => {
      const c = document.getElementById('lens-heatmap-1') as HTMLCanvasElement;
      const b = document.createElement('canvas');
      [b.width, b.height] = [c.width, c.height];
      return [c.toDataURL() === b.toDataURL(), c.width > 50, c.height > 30];
    });
    expect(blank).toEqual([false, true, true]);
    const box = (await page.locator('#lens-heatmap-1').boundingBox())!;
    await page.locator('#lens-heatmap-1').hover({ position: { x: box.width - 10, y: box.height - 10 } }); // last layer, a late token
    expect(await page.locator('#tip').textContent()).toMatch(/encoder\.layer\.1/);
    await page.locator('#lens').screenshot({ path: join(shots, 'inspect-lens.png') });
    expect(problems).toEqual([]);
    await page.close();
    const plain = await open(report, 'no-lens');
    expect(await plain.page.locator('#lens').count()).toBe(0);
    await plain.page.close();
  });

  it('a 512-token passage loads and switches views', async () => {
    const { page, problems } = await open(longReport, 'long');
    expect(await page.locator('.tokens[data-role="passage"] .tok').count()).toBe(512);
    await rendered(page, '1:0:-1');
    const first = await heatmap(page);
    const t0 = Date.now();
    await page.selectOption('#sel-layer', '3');
    await rendered(page, '1:3:-1');
    console.log(`512-token page: layer switch redrawn in ${Date.now() - t0} ms`);
    expect(await heatmap(page)).not.toBe(first);
    await page.screenshot({ path: join(shots, 'inspect-small-m3-512.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });
});
