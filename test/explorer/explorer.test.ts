/**
 * The explorer from a user's side, in Debian's Chromium (playwright-core): `startExplorer` (what
 * `npm run explorer` runs) serves the page with COOP/COEP. Every number read from the page is compared
 * with Node on the same fixture checkpoint (max abs errors printed):
 *  - a query and five passages of unequal lengths (one past 512 tokens, its truncation stated): token
 *    weights equal `encode`'s lexical weights, the score cards and the passages table `computeScore`'s;
 *    the dense/lexical score's attribution, computed in the page, equals `m3.attribute`'s; every view is
 *    drawn (canvases with ink, tables with rows);
 *  - three rounds of typing, ablating a head (= `runWithHooks` with its context zeroed), restoring it:
 *    an edit dims the views at once, and once settled no view shows the previous text's numbers; the
 *    live tensor count does not grow;
 *  - the backend choices webgpu (SwiftShader) and cpu give `encode`'s weights and scores within the
 *    browser parity tolerance, and the page states the backend and matMul path that ran;
 *  - failures are shown in the page with the views cleared: a 404 URL, a folder URL or a picked folder
 *    without weights, a URL that is not a folder, an empty query, webgpu in a Chromium without WebGPU;
 *    an empty passage list is a query-only page, stated.
 * The screenshots' folder is printed (docs/explorer-screenshot.png is explorer.png). Skipped only when
 * /usr/bin/chromium is missing (CI installs the `chromium` package).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { BgeM3 } from '../../src/m3.js';
import { attribute } from '../../src/attribution/attribute.js';
import { patchHead } from '../../src/attribution/patching.js';
import { layerName } from '../../src/hooks/names.js';
import { startExplorer } from '../../src/serve/explorer.js';
import type { StaticServer } from '../../src/serve/static.js';
import { checkpointDir } from '../helpers/fixtures.js';
import { loadCases } from '../helpers/reference.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/explorer/explorer.test.ts: skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const QUERY = 'Wie funktioniert die Suche mit BGE M3 und lexical matching?';
const LONG = loadCases().find((c) => c.input_ids.length > 600)!.text; // past the page's 512 tokens
const PASSAGES = [
  'BGE M3 supports dense retrieval, lexical matching (sparse weights) and multi-vector ColBERT interaction in more than 100 languages.',
  'BM25 ranks documents.',
  'Die Suche mit BGE M3: dichte Vektoren, lexikalische Gewichte und ColBERT zusammen, für lange und kurze Texte, in vielen Sprachen gleichermaßen.',
  'Paris is the capital of France.',
  LONG.replace(/\s*\n\s*/g, ' '), // one line: the passages box takes one passage per line
];
const MAX_LENGTH = 512;
const TOL_WASM = 1e-6; // the same wasm kernels in the page and in Node
const TOL = 1e-4; // another backend: the browser parity tests' tolerance (test/browser)

type Weights = Record<string, number>;

/** Largest |a − b| over the union of keys (a key missing on one side counts its whole value). */
function maxDiff(a: Weights, b: Weights): number {
  let m = 0;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) m = Math.max(m, Math.abs((a[k] ?? 0) - (b[k] ?? 0)));
  return m;
}
const flatDiff = (a: number[], b: number[]) => (a.length !== b.length ? Infinity : Math.max(0, ...a.map((v, i) => Math.abs(v - b[i]!))));

describe.skipIf(!haveChromium)('the explorer in Chromium', () => {
  let server: StaticServer & { page: string };
  let browser: Browser;
  let m3: BgeM3;
  const shots = mkdtempSync(join(tmpdir(), 'bge-m3-explorer-shots-'));

  beforeAll(async () => {
    server = await startExplorer();
    const { chromium } = await import('playwright-core');
    // WebGPU on SwiftShader (a CPU emulation): the backend choice 'webgpu' can run
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'],
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
  const pageIds = (page: Page, role: 'query' | 'passage'): Promise<number[]> =>
    page.locator(`.tokens[data-role="${role}"] .tok`).evaluateAll((chips) => (chips as HTMLElement[]).map((c) => Number(c.dataset['id'])));

  /** Share of a canvas's pixels that are neither blank nor white (a drawn view has many). */
  const inked = (page: Page, selector: string): Promise<number> =>
    page.locator(selector).evaluate((c: HTMLCanvasElement) => {
      if (c.width === 0 || c.height === 0) return 0;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3]! > 0 && (d[i]! < 245 || d[i + 1]! < 245 || d[i + 2]! < 245)) n++;
      return n / (d.length / 4);
    });

  /** Waits until no load, run or edit's run is pending; returns the error shown, or null. */
  const settled = async (page: Page): Promise<string | null> => {
    await page.evaluate(() => (window as unknown as { explorer: { settled(): Promise<void> } }).explorer.settled());
    return page.evaluate(() => document.body.dataset['error'] ?? null);
  };
  const card = async (page: Page, name: string) => Number(await page.locator(`.card[data-score="${name}"]`).getAttribute('data-value'));
  const tensors = (page: Page) => page.evaluate(() => (window as unknown as { explorer: { state: { tensors: number[] } } }).explorer.state.tensors);

  async function open(b: Browser = browser): Promise<{ page: Page; problems: string[] }> {
    const page = await b.newPage({ viewport: { width: 1300, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(server.page);
    await page.waitForSelector('body[data-started="true"]', { timeout: 60_000 });
    return { page, problems };
  }

  /** Loads a model from the controls; returns the error shown, or null. */
  async function load(page: Page, backend: string, source: 'fixture' | 'url' = 'fixture', url = ''): Promise<string | null> {
    await page.selectOption('#model-source', source);
    if (source === 'url') await page.fill('#model-url', url);
    await page.selectOption('#backend', backend);
    await page.click('#load');
    await page.waitForSelector('body[data-loaded="true"], body[data-error]', { timeout: 120_000 });
    return settled(page);
  }

  /** The page's query and detailed-passage weights and scores against Node's `encode` / `computeScore`. */
  async function compareWithNode(page: Page, label: string, query: string, passage: string, tol: number): Promise<void> {
    const node = await m3.encode([query, passage], { returnSparse: true, maxLength: MAX_LENGTH });
    const [q, p] = [await pageWeights(page, 'query'), await pageWeights(page, 'passage')];
    expect(Object.keys(q).sort()).toEqual(Object.keys(node.lexicalWeights![0]!).sort());
    expect(Object.keys(p).sort()).toEqual(Object.keys(node.lexicalWeights![1]!).sort());
    const err = Math.max(maxDiff(q, node.lexicalWeights![0]!), maxDiff(p, node.lexicalWeights![1]!));
    const s = await m3.computeScore([[query, passage]], { maxPassageLength: MAX_LENGTH });
    const scoreErr = Math.max(
      Math.abs(await card(page, 'dense') - s.dense[0]!), Math.abs(await card(page, 'sparse') - s.sparse[0]!),
      Math.abs(await card(page, 'ColBERT') - s.colbert[0]!), Math.abs(await card(page, 'colbert+sparse+dense') - s['colbert+sparse+dense'][0]!));
    console.log(`explorer ${label}: page vs Node: lexical weights max abs error ${err.toExponential(2)} over ${Object.keys(q).length} + ${Object.keys(p).length} ids; scores ${scoreErr.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(tol);
    expect(scoreErr).toBeLessThanOrEqual(Math.max(tol, 1e-5));
  }

  it('five passages: weights, scores and the attribution equal Node\'s; edits, ablations and restores leave no stale view and no tensor', { timeout: 400_000 }, async () => {
    const { page, problems } = await open();
    const notFound: string[] = []; // console errors of 404 answers (Chromium logs each one)
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (m.text().includes('status of 404 (Not Found)')) notFound.push(m.text());
      else problems.push(`console error: ${m.text()}`);
    });
    // The loader probes for optional files (model.safetensors's alternatives …): those 404s are expected.
    const probes: string[] = [];
    page.on('response', (r) => {
      if (r.status() < 400) return;
      const path = new URL(r.url()).pathname;
      const file = path.startsWith('/test/fixtures/sharp-m3/') && r.status() === 404 ? path.slice('/test/fixtures/sharp-m3/'.length) : undefined;
      if (file && !file.includes('/') && !existsSync(join(checkpointDir('sharp-m3'), file))) probes.push(file);
      else problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    expect(await load(page, 'wasm')).toBeNull();
    const runtime = await page.locator('#runtime').textContent();
    console.log(`explorer: runtime line: ${runtime}`);
    expect(await page.getAttribute('#runtime', 'data-backend')).toBe('wasm');
    expect(runtime).toMatch(/^backend wasm · matMul: .+ · \d+ wasm threads? · crossOriginIsolated true$/);

    await page.fill('#query', QUERY);
    await page.fill('#passage', PASSAGES.join('\n'));
    expect(await page.getAttribute('body', 'data-stale')).toBe('true'); // dimmed at once, before the run
    expect(await settled(page)).toBeNull();
    expect(await page.getAttribute('body', 'data-stale')).toBeNull();
    await compareWithNode(page, 'wasm, passage 1 of 5', QUERY, PASSAGES[0]!, TOL_WASM);

    // the passages table: every passage's scores as computeScore's, lengths and the long one's truncation
    const scores = await m3.computeScore(PASSAGES.map((p) => [QUERY, p] as [string, string]), { maxPassageLength: MAX_LENGTH });
    const rows = page.locator('#passages-table tbody tr');
    expect(await rows.count()).toBe(PASSAGES.length);
    let tableErr = 0;
    for (const [i, p] of PASSAGES.entries()) {
      for (const [k, ref] of [['dense', scores.dense], ['sparse', scores.sparse], ['colbert', scores.colbert], ['colbert+sparse+dense', scores['colbert+sparse+dense']]] as const) {
        tableErr = Math.max(tableErr, Math.abs(Number(await rows.nth(i).locator(`td[data-score="${k}"]`).getAttribute('data-value')) - ref[i]!));
      }
      expect(await rows.nth(i).locator('.passage-text').getAttribute('title')).toBe(p);
    }
    console.log(`explorer: passages table vs Node computeScore: max abs error ${tableErr.toExponential(2)}`);
    expect(tableErr).toBeLessThanOrEqual(1e-5);
    const longTokens = m3.tokenize([PASSAGES[4]!], m3.maxLength)[0]!.length;
    expect(await rows.nth(4).textContent()).toContain(`512 (truncated from ${longTokens})`);
    expect(await page.locator('#status').textContent()).toContain(`passage 5 truncated to 512 of ${longTokens} tokens`);

    // attribution of the lexical score, computed in the page, against m3.attribute in Node
    await page.selectOption('#attribute', 'lexical');
    expect(await settled(page)).toBeNull();
    const ref = await attribute(m3, [QUERY, PASSAGES[0]!], { target: 'lexical', maxLength: MAX_LENGTH });
    const json = (sel: string) => page.locator(sel).getAttribute('data-values').then((v) => JSON.parse(v!) as number[][]);
    let attrErr = Math.abs(Number(await page.getAttribute('#attribution-title', 'data-value')) - ref.value);
    for (const [s, sfx] of ['', '-1'].entries()) {
      attrErr = Math.max(attrErr, flatDiff((await json(`#attribution-heads${sfx}`)).flat(), ref.sides[s]!.heads.flat()));
      attrErr = Math.max(attrErr, flatDiff((await json(`#attribution-tokens${sfx}`)).flat(), ref.sides[s]!.tokenAttributions));
      const cells = await page.locator(`#attribution-layers${sfx} td[data-value]`).evaluateAll((tds) => tds.map((t) => Number((t as HTMLElement).dataset['value'])));
      attrErr = Math.max(attrErr, flatDiff(cells, ref.sides[s]!.attention.flatMap((a, l) => [a, ref.sides[s]!.mlp[l]!])));
    }
    const scale = Math.max(...ref.sides.flatMap((s) => s.heads.flat().map(Math.abs)));
    console.log(`explorer: lexical-score attribution (value ${ref.value.toFixed(5)}, largest head ${scale.toExponential(2)}), page vs Node m3.attribute: max abs error ${attrErr.toExponential(2)}`);
    expect(scale).toBeGreaterThan(1e-3);
    expect(attrErr).toBeLessThanOrEqual(1e-5);

    // every view is drawn: attention heatmap, head view, ColBERT alignment, sparse lens, head thumbnails, attribution
    for (const sel of ['#attn-heatmap', '#head-view', '#colbert-heatmap', '#lens-heatmap-0', '#lens-heatmap-1', '#head-grid canvas[data-head="0"]',
      '#attribution-heads', '#attribution-heads-1', '#attribution-tokens-1']) {
      expect(await inked(page, sel), `${sel} is blank`).toBeGreaterThan(0.02);
    }
    for (const sel of ['#lexical-table tbody tr', '#colbert-matches tbody tr', '#norm-chart canvas', '#attribution-layers-1 td[data-value]']) {
      expect(await page.locator(sel).count(), `${sel}: none`).toBeGreaterThan(0);
    }
    expect(await page.locator('button.ablate').count()).toBe(m3.config.num_hidden_layers * m3.config.num_attention_heads);
    await page.screenshot({ path: join(shots, 'explorer.png'), fullPage: true, clip: { x: 0, y: 0, width: 1300, height: 1500 } });

    // a click on a row shows that passage in every view; the long one's truncation is stated
    await rows.nth(4).click();
    expect(await settled(page)).toBeNull();
    expect(await page.locator('#tokens h3').nth(1).textContent()).toContain(`truncated to 512 of ${longTokens} tokens`);
    expect(await pageIds(page, 'passage')).toEqual(m3.tokenize([PASSAGES[4]!], MAX_LENGTH)[0]);
    await compareWithNode(page, 'wasm, passage 5 (truncated)', QUERY, PASSAGES[4]!, TOL_WASM);
    await page.selectOption('#attribute', 'off');
    await rows.nth(0).click();
    expect(await settled(page)).toBeNull();

    // three rounds: type, ablate a head, restore it; the views always show the typed texts
    const [layer, head] = [0, 1];
    const hooks = { [layerName(layer, 'attention.self.hook_out')]: patchHead(head, m3.config.num_attention_heads, undefined) };
    const lensBefore = await page.locator('#lens-heatmap-0').evaluate((c: HTMLCanvasElement) => c.toDataURL());
    for (let round = 0; round < 3; round++) {
      const query = `${QUERY} Runde ${round + 1}: ${'mehr '.repeat(round * 3)}Text`;
      await page.fill('#query', query);
      expect(await page.getAttribute('body', 'data-stale')).toBe('true');
      expect(await page.locator('#app.stale').count()).toBe(1);
      expect(await settled(page)).toBeNull();
      const clean = await pageWeights(page, 'query');
      expect(await pageIds(page, 'query')).toEqual(m3.tokenize([query], MAX_LENGTH)[0]); // not the previous text's
      await compareWithNode(page, `round ${round + 1}, typed`, query, PASSAGES[0]!, TOL_WASM);

      await page.click(`button.ablate[data-layer="${layer}"][data-head="${head}"]`);
      expect(await settled(page)).toBeNull();
      expect(await page.getAttribute('body', 'data-ablated')).toBe(`${layer}:${head}`);
      const ablated = await m3.runWithHooks([query, PASSAGES[2]!], hooks, { maxLength: MAX_LENGTH });
      const qa = await pageWeights(page, 'query');
      const ablErr = maxDiff(qa, ablated.lexicalWeights![0]!);
      console.log(`explorer: round ${round + 1}: head L${layer}H${head} ablated: query weights moved by up to ${maxDiff(qa, clean).toExponential(2)}; page vs Node runWithHooks: max abs error ${ablErr.toExponential(2)}`);
      expect(maxDiff(qa, clean)).toBeGreaterThan(1e-3);
      expect(ablErr).toBeLessThanOrEqual(TOL_WASM);
      // the passages table is of the ablated model too
      const s2 = Number(await rows.nth(2).locator('td[data-score="sparse"]').getAttribute('data-value'));
      const { lexicalMatchingScore } = await import('../../src/scores.js');
      expect(Math.abs(s2 - lexicalMatchingScore(ablated.lexicalWeights![0]!, ablated.lexicalWeights![1]!))).toBeLessThanOrEqual(1e-5);
      if (round === 0) {
        expect(await page.locator('#lens-heatmap-0').evaluate((c: HTMLCanvasElement) => c.toDataURL())).not.toBe(lensBefore);
        await page.screenshot({ path: join(shots, 'explorer-ablated.png'), fullPage: true, clip: { x: 0, y: 0, width: 1300, height: 2400 } });
      }

      await page.click(`button.ablate[data-layer="${layer}"][data-head="${head}"]`);
      expect(await settled(page)).toBeNull();
      expect(await pageWeights(page, 'query')).toEqual(clean); // restored bit for bit
    }

    // no tensor left behind by a run (the model's own weights stay)
    const alive = await tensors(page);
    console.log(`explorer: tensors alive after each of ${alive.length} runs: ${alive.join(', ')}`);
    expect(alive.length).toBeGreaterThanOrEqual(12);
    expect(new Set(alive.slice(1)).size).toBe(1);
    console.log(`explorer: probes for absent optional files: ${probes.join(', ')}`);
    expect(notFound.length).toBe(probes.length);
    expect(problems).toEqual([]);
    await page.close();
  });

  /** Loads the fixture on `backend`, runs the query and a passage, and compares with Node within the browser parity tolerance. */
  async function backendRun(page: Page, backend: string): Promise<void> {
    await page.fill('#query', QUERY);
    await page.fill('#passage', PASSAGES[0]!);
    const t0 = Date.now();
    const err = await load(page, backend);
    const runtime = await page.locator('#runtime').textContent();
    console.log(`explorer: ${backend}: loaded and ran in ${Date.now() - t0} ms; runtime line: ${runtime}; error: ${err}`);
    expect(err).toBeNull();
    expect(await page.getAttribute('#runtime', 'data-backend')).toBe(backend);
    expect(runtime).toContain(`backend ${backend} · matMul: ${backend} backend matMul`);
    expect(runtime).not.toContain('asked for');
    expect(await page.locator('#meta').textContent()).toContain(`backend ${backend}`);
    await compareWithNode(page, backend, QUERY, PASSAGES[0]!, TOL);
    expect(await inked(page, '#attn-heatmap')).toBeGreaterThan(0.02);
  }

  it('the backend choice cpu gives encode\'s weights and scores, and says what ran', { timeout: 300_000 }, async () => {
    const { page, problems } = await open();
    await backendRun(page, 'cpu');
    expect(problems).toEqual([]);
    await page.close();
  });

  // In headless Chromium on SwiftShader a synchronous read on the webgpu backend destroys the GPU
  // device; nothing on the explorer's path reads synchronously on a GPU backend (scores.ts
  // colbertSimilarity, the fast op set's attention core), and attribution there says it needs wasm or cpu.
  it('the backend choice webgpu (SwiftShader) gives encode\'s weights and scores, and says what ran', { timeout: 300_000 }, async () => {
    const { page } = await open();
    try {
      await backendRun(page, 'webgpu');
      // attribution reads its gradients synchronously: on a GPU backend it says so, and the page recovers
      await page.selectOption('#attribute', 'dense');
      const err = await settled(page);
      console.log(`explorer: webgpu: attribution: ${err}`);
      expect(err).toMatch(/runs on the wasm or cpu backend, not 'webgpu'/);
      await page.selectOption('#attribute', 'off');
      expect(await settled(page)).toBeNull();
      expect(await page.locator('.card').count()).toBe(5);
    } finally {
      const status = await page.locator('#status').textContent();
      console.log(`explorer: webgpu: status line: ${status}`);
      await page.close();
    }
  });

  it('shows each failure in the page, clears the views, and recovers', { timeout: 300_000 }, async () => {
    const { page, problems } = await open();
    // a folder URL with config and tokenizer but no weight file
    const fixture = checkpointDir('sharp-m3');
    await page.route('**/no-weights/*', (route) => {
      const file = new URL(route.request().url()).pathname.split('/').pop()!;
      if (['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'].includes(file)) {
        return route.fulfill({ status: 200, contentType: 'application/json', body: readFileSync(join(fixture, file)) });
      }
      return route.fulfill({ status: 404, body: 'not found' });
    });
    const shown = async (what: string): Promise<string> => {
      const status = (await page.locator('#status').textContent())!;
      console.log(`explorer: ${what}: ${status}`);
      expect(await page.locator('#status.error').count()).toBe(1);
      expect(await page.locator('#app').evaluate((e) => e.children.length)).toBe(0); // no view of another model or text
      return status;
    };
    const base = `${server.url}test/fixtures/`;
    expect(await load(page, 'wasm', 'url', `${base}no-such-model/`)).not.toBeNull();
    expect(await shown('404 folder')).toMatch(/no-such-model\/\S*: .*404/);
    expect(await load(page, 'wasm', 'url', `${server.url}no-weights/`)).not.toBeNull();
    expect(await shown('folder without weights')).toMatch(/no-weights.*no encoder weights in the snapshot \(looked for .*model\.safetensors/);
    expect(await load(page, 'wasm', 'url', `${base}sharp-m3`)).not.toBeNull();
    expect(await shown('not a folder URL')).toContain(`must end in '/' (got '${base}sharp-m3')`);
    expect(await load(page, 'wasm', 'url', `${base}sharp-m3/config.json`)).not.toBeNull();
    expect(await shown('a file URL')).toContain("must end in '/'");
    await page.selectOption('#model-source', 'folder');
    const noWeights = mkdtempSync(join(tmpdir(), 'bge-m3-no-weights-'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(fixture, f), join(noWeights, f));
    await page.setInputFiles('#model-files', noWeights); // a webkitdirectory input takes a folder
    await page.click('#load');
    await page.waitForSelector('body[data-error]', { timeout: 60_000 });
    expect(await shown('picked folder without weights')).toMatch(/no encoder weights/);

    // a good load; then an empty query, and an empty passage list (a query-only page, stated)
    expect(await load(page, 'wasm')).toBeNull();
    expect(await page.locator('#app section').count()).toBeGreaterThan(3);
    await page.fill('#query', '   ');
    expect(await settled(page)).not.toBeNull();
    expect(await shown('empty query')).toContain('the query is empty');
    await page.fill('#query', QUERY);
    await page.fill('#passage', '\n  \n');
    expect(await settled(page)).toBeNull();
    expect(await page.locator('#status').textContent()).toContain('query only: type a passage for the scores');
    expect(await page.locator('.card').count()).toBe(0);
    expect(await pageIds(page, 'query')).toEqual(m3.tokenize([QUERY], MAX_LENGTH)[0]);
    await page.selectOption('#attribute', 'dense');
    expect(await settled(page)).not.toBeNull();
    expect(await shown('attribution without a passage')).toContain('type a passage');
    await page.selectOption('#attribute', 'off');
    await page.fill('#passage', PASSAGES[1]!);
    expect(await settled(page)).toBeNull();
    expect(await page.locator('.card').count()).toBe(5);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('tells a backend that cannot start (webgpu in a Chromium without WebGPU) and the page still works', { timeout: 180_000 }, async () => {
    const { chromium } = await import('playwright-core');
    const plain = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const { page, problems } = await open(plain);
      const err = await load(page, 'webgpu');
      console.log(`explorer: webgpu without an adapter: ${err}`);
      expect(err).toMatch(/backend 'webgpu': .*(no adapter|no WebGPU)/);
      expect(await page.locator('#status.error').textContent()).toBe(err);
      expect(await page.locator('#runtime').textContent()).toBe('');
      expect(await load(page, 'wasm')).toBeNull();
      expect(await page.getAttribute('#runtime', 'data-backend')).toBe('wasm');
      expect(Object.keys(await pageWeights(page, 'query')).length).toBeGreaterThan(0);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await plain.close();
    }
  });

  it('loads a folder picked on disk (File objects) and shows the same weights as encode', { timeout: 120_000 }, async () => {
    const { page, problems } = await open();
    const served: string[] = []; // model files asked of the server: none, they come from the picked folder
    page.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/test/')) served.push(r.url()); });
    await page.selectOption('#model-source', 'folder');
    await page.setInputFiles('#model-files', checkpointDir('sharp-m3')); // a webkitdirectory input: the folder's files
    await page.click('#load');
    await page.waitForSelector('body[data-loaded="true"], body[data-error]', { timeout: 60_000 });
    expect(await settled(page)).toBeNull();
    const query = await page.inputValue('#query');
    const passage = (await page.inputValue('#passage')).split('\n')[0]!;
    await compareWithNode(page, 'picked folder', query, passage, TOL_WASM);
    expect(await page.locator('#meta').textContent()).toContain('sharp-m3');
    expect(served).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });
});
