/**
 * Loading a model folder from another origin, as any page loads one from the Hugging Face hub, and the
 * ways that fails, told plainly in Chromium (issue 21): a host that sends the CORS headers (directly,
 * or after the hub's redirect to another origin) works and gives the outputs of a same-origin load; a
 * host without CORS, or one that hides Content-Range, is named with what it must send; a full browser
 * cache (a tiny quota set through CDP) names the file, says how to free space and leaves no half-stored
 * entry; a static host that answers a missing file with its index.html (a single-page-app fallback) is
 * named as sending an HTML page; a file whose size changes between two ranges (or a 416) is told as changed.
 * The 404, cut body and changed-file cases are in browser.test.ts. Skipped when /usr/bin/chromium is missing.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { etagOf, serveFile, startStaticServer, type StaticServer } from '../../src/serve/static.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { loadCases, maxAbsDiff, sparseMaxAbsDiff } from '../helpers/reference.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/browser/load-errors.test.ts: skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const ROOT = join(FIXTURES, '..', '..');
const ids = loadCases().slice(0, 4).map((c) => c.input_ids);
const INDEX_HTML = '<!doctype html>\n<html><head><title>My app</title></head><body><div id="app"></div></body></html>\n';

interface PageOutput { dense: number[][]; sparse: Record<string, number>[]; colbert: { data: number[] }[]; leaked: number }
type Bge = {
  encodeAll(model: string, opts: object, ids: number[][]): Promise<PageOutput>;
  loadError(model: string, opts: object): Promise<string | null>;
  BgeM3: { load(model: string, opts: object): Promise<{ dispose(): void }> };
  cachingFetch(name: string): typeof fetch;
};

describe.skipIf(!haveChromium)('load errors in Chromium: cross-origin folders, a full cache, an HTML fallback', () => {
  let browser: Browser;
  let home: StaticServer; // the page's origin
  let remote: StaticServer; // another origin (another port): the model host
  let cdn: StaticServer; // a third origin the model host redirects to
  const requests: string[] = []; // 'METHOD path' asked of the model host

  /** The Hugging Face hub's shape: /hub/ redirects (302) to a file server at a third origin that sends CORS; /hub-to-nocors/ to the page's server, which sends none. */
  const redirect = (path: string, res: ServerResponse): boolean => {
    const m = /^\/(hub|hub-to-nocors)\/(.*)$/.exec(path);
    if (m) res.writeHead(302, { Location: `${m[1] === 'hub' ? cdn.url : home.url}cdn/${m[2]}` }).end();
    return m !== null;
  };

  /** /grown/ and /shrunk/<ckpt>/: after the first range (which gave the size) the weights' size changes, their ETag does not. */
  const resize = (path: string, req: IncomingMessage, res: ServerResponse): boolean => {
    const m = /^\/(grown|shrunk)\/([\w-]+)\/(.*)$/.exec(path);
    if (!m) return false;
    const file = join(FIXTURES, m[2]!, m[3]!);
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m[3] !== 'model.safetensors' || !range || range[2] === '0') {
      serveFile(req, res, file); // (a 404 for the files the loader probes and the fixture lacks)
      return true;
    }
    const st = statSync(file);
    if (m[1] === 'shrunk') {
      res.writeHead(416, { 'Content-Range': `bytes */${st.size - 100}`, ETag: etagOf(st) }).end();
    } else {
      const [a, b] = [Number(range[1]), Number(range[2])];
      res.writeHead(206, { 'Content-Range': `bytes ${a}-${b}/${st.size + 100}`, 'Content-Length': String(b - a + 1), ETag: etagOf(st) })
        .end(readFileSync(file).subarray(a, b + 1));
    }
    return true;
  };

  /** /spa/[without-<file>/]<ckpt>/: a missing file (or <file>) is answered with the site's index.html, status 200, as single-page-app hosting does. */
  const spaFallback = (path: string, req: IncomingMessage, res: ServerResponse): boolean => {
    const m = /^\/spa\/(?:without-([\w.]+)\/)?([\w-]+)\/(.*)$/.exec(path);
    if (!m) return false;
    const file = join(FIXTURES, m[2]!, m[3]!);
    if (m[3] !== m[1] && existsSync(file)) serveFile(req, res, file);
    else res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(Buffer.byteLength(INDEX_HTML)) }).end(INDEX_HTML);
    return true;
  };

  /**
   * The model host's faults, by path prefix: /nocors/ sends no Access-Control-* header, /noexpose/
   * allows the origin but exposes no header, /etag-hidden/ exposes Content-Range only; then the above.
   */
  const intercept = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    if (path.startsWith('/nocors/')) for (const h of res.getHeaderNames()) if (h.startsWith('access-control-')) res.removeHeader(h);
    if (path.startsWith('/noexpose/')) res.removeHeader('access-control-expose-headers');
    if (path.startsWith('/etag-hidden/')) res.setHeader('Access-Control-Expose-Headers', 'Content-Range');
    return redirect(path, res) || resize(path, req, res) || spaFallback(path, req, res);
  };

  beforeAll(async () => {
    // The page's server also serves the fixtures under /cdn/ (no CORS): where /hub-to-nocors/ redirects.
    home = await startStaticServer({ mounts: { '/dist/': join(ROOT, 'dist'), '/test/': join(ROOT, 'test'), '/cdn/': FIXTURES } });
    cdn = await startStaticServer({ mounts: { '/cdn/': FIXTURES }, cors: true });
    remote = await startStaticServer({
      mounts: { '/m/': FIXTURES, '/nocors/': FIXTURES, '/noexpose/': FIXTURES, '/etag-hidden/': FIXTURES },
      cors: true,
      intercept,
    });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
    await home?.close();
    await remote?.close();
    await cdn?.close();
  });

  async function openPage(): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${home.url}test/browser/page.html`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    return page;
  }
  const loadError = (page: Page, model: string): Promise<string | null> =>
    page.evaluate((m) => (window as unknown as { bge: Bge }).bge.loadError(m, { backend: 'wasm' }), model);

  it('a cross-origin folder whose host sends CORS headers loads, and its outputs equal a same-origin load', async () => {
    const page = await openPage();
    const encode = (model: string) => page.evaluate(([m, i]) => (window as unknown as { bge: Bge }).bge.encodeAll(m, { backend: 'wasm' }, i), [model, ids] as const);
    const same = await encode(`${home.url}test/fixtures/tiny-m3/`);
    requests.length = 0;
    const cross = await encode(`${remote.url}m/tiny-m3/`);
    expect(new URL(remote.url).origin).not.toBe(new URL(home.url).origin);
    expect(requests).toContain('GET /m/tiny-m3/model.safetensors');
    const err = { dense: 0, sparse: 0, colbert: 0 };
    for (let i = 0; i < ids.length; i++) {
      err.dense = Math.max(err.dense, maxAbsDiff(cross.dense[i]!, same.dense[i]!));
      err.sparse = Math.max(err.sparse, sparseMaxAbsDiff(cross.sparse[i]!, same.sparse[i]!));
      err.colbert = Math.max(err.colbert, maxAbsDiff(cross.colbert[i]!.data, same.colbert[i]!.data));
    }
    console.log(`cross-origin vs same-origin, max abs error: ${JSON.stringify(err)}`);
    expect(err).toEqual({ dense: 0, sparse: 0, colbert: 0 });
    expect(cross.leaked).toBe(0);
    // The hub's shape (a redirect to a CDN at a third origin) gives the same outputs too.
    requests.length = 0;
    const redirected = await encode(`${remote.url}hub/tiny-m3/`);
    expect(requests).toContain('GET /hub/tiny-m3/model.safetensors');
    expect(redirected.dense).toEqual(same.dense);
    expect(redirected.sparse).toEqual(same.sparse);
    expect(redirected.colbert).toEqual(same.colbert);
    // An Authorization header (a private repository) makes the browser ask first (OPTIONS): answered, it loads.
    requests.length = 0;
    expect(await page.evaluate((m) => (window as unknown as { bge: Bge }).bge.loadError(m, { backend: 'wasm', headers: { Authorization: 'Bearer test' } }), `${remote.url}m/tiny-m3/`)).toBeNull();
    console.log(`with Authorization: ${requests.filter((r) => r.startsWith('OPTIONS')).length} preflights of ${requests.length} requests`);
    expect(requests).toContain('OPTIONS /m/tiny-m3/model.safetensors');
    await page.close();
  });

  it('a host without CORS headers, or hiding Content-Range and ETag, is told with what it must send', async () => {
    const page = await openPage();
    const refused = await loadError(page, `${remote.url}nocors/tiny-m3/`);
    console.log(`no CORS: ${refused}`);
    // The first file asked for (the two tokenizer files are asked for together), named; CORS named, with the headers the server must send.
    expect(refused).toMatch(new RegExp(`^${remote.url}nocors/tiny-m3/tokenizer(_config)?\\.json: request failed `));
    expect(refused).toMatch(/refused the request by CORS: a server at another origin than the page .*must send Access-Control-Allow-Origin .*Access-Control-Expose-Headers: Content-Range, Content-Length, ETag$/);
    // A redirect to a server without CORS: the browser hides where it went; the message says redirects count.
    const redirected = await loadError(page, `${remote.url}hub-to-nocors/tiny-m3/`);
    console.log(`redirect to a server without CORS: ${redirected}`);
    expect(redirected).toMatch(new RegExp(`^${remote.url}hub-to-nocors/tiny-m3/tokenizer(_config)?\\.json: request failed `));
    expect(redirected).toContain('refused the request by CORS: a server at another origin than the page (and any server it redirects to) must send');
    const hidden = await loadError(page, `${remote.url}noexpose/tiny-m3/`);
    console.log(`not exposed: ${hidden}`);
    // The JSON files need no header but the safelisted ones; the weights' Range answer does.
    expect(hidden).toContain(`${remote.url}noexpose/tiny-m3/model.safetensors: `);
    expect(hidden).toContain('Content-Range header is missing or hidden: a server at another origin than the page must expose it (Access-Control-Expose-Headers: Content-Range, Content-Length, ETag)');
    // ETag hidden, Content-Range exposed: it loads, the version check using Last-Modified (always readable) instead.
    expect(await loadError(page, `${remote.url}etag-hidden/tiny-m3/`)).toBeNull();
    await page.close();
  });

  it('a full browser cache (tiny quota) names the file, says how to free it, and keeps no half-stored file', async () => {
    const page = await openPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(home.url).origin, quotaSize: 1_200_000 });
    const model = `${home.url}test/fixtures/tiny-m3/`;
    const got = await page.evaluate(async (m) => {
      const { bge } = window as unknown as { bge: Bge };
      let error: string | null = null;
      try {
        (await bge.BgeM3.load(m, { backend: 'wasm', fetch: bge.cachingFetch('bge-m3-quota') })).dispose();
      } catch (e) {
        error = (e as Error).message;
      }
      const cache = await caches.open('bge-m3-quota');
      const keys = (await cache.keys()).map((r) => r.url);
      const sizes: Record<string, number> = {};
      for (const k of keys) sizes[k] = (await (await cache.match(k))!.blob()).size;
      return { error, keys, sizes };
    }, model);
    console.log(`full cache: ${got.error}; cached: ${got.keys.map((k) => `${k.split('/').pop()} (${got.sizes[k]} bytes)`).join(', ')}`);
    const weights = `${model}model.safetensors`;
    expect(got.error).toBe(`${weights}: the browser cache is full (QuotaExceededError): this site's storage quota has no room for the file `
      + `(${statSync(join(FIXTURES, 'tiny-m3', 'model.safetensors')).size} bytes). Free space with caches.delete('bge-m3-quota') `
      + "or by clearing this site's data in the browser, or load without cachingFetch");
    // Nothing half-stored: the weights are not in the cache, and what is there is whole.
    expect(got.keys).not.toContain(weights);
    expect(got.keys.length).toBeGreaterThan(0);
    for (const k of got.keys) expect(got.sizes[k], k).toBe(statSync(join(FIXTURES, 'tiny-m3', k.split('/').pop()!)).size);
    expect(await loadError(page, model)).toBeNull();
    await page.close();
  });

  it('a host answering a missing file with its index.html (single-page-app fallback) is named as sending an HTML page', async () => {
    const page = await openPage();
    const html = /: the server answered with an HTML page \(Content-Type text\/html; charset=utf-8\), not the model file: is the URL right\? .*index\.html/;
    // A wrong folder (every file is the page; the two tokenizer files are asked for together), a missing config.json, missing weights.
    for (const [folder, file] of [['no-such-model', 'tokenizer(_config)?'], ['without-config.json/tiny-m3', 'config'], ['without-model.safetensors/tiny-m3', 'model']]) {
      const msg = await loadError(page, `${remote.url}spa/${folder}/`);
      console.log(`HTML for ${folder}: ${msg}`);
      expect(msg!.startsWith(`${remote.url}spa/${folder}/`), msg!).toBe(true);
      expect(msg).toMatch(new RegExp(`/${file}\\.(json|safetensors): the server answered with an HTML page`));
      expect(msg).toMatch(html);
    }
    await page.close();
  });

  it('a file whose size changes between two ranges (the same ETag) is told as changed, a 416 too', async () => {
    const page = await openPage();
    const size = statSync(join(FIXTURES, 'tiny-m3', 'model.safetensors')).size;
    const grown = await loadError(page, `${remote.url}grown/tiny-m3/`);
    console.log(`grown: ${grown}`);
    expect(grown).toBe(`${remote.url}grown/tiny-m3/model.safetensors: header length: the file changed on the server between two range requests (size ${size} then ${size + 100}); reload to read it afresh`);
    const shrunk = await loadError(page, `${remote.url}shrunk/tiny-m3/`);
    console.log(`shrunk: ${shrunk}`);
    expect(shrunk).toBe(`${remote.url}shrunk/tiny-m3/model.safetensors: header length: the server refused bytes 0–7 of the ${size}-byte file `
      + `(HTTP 416 Range Not Satisfiable; it now has ${size - 100} bytes): the file changed on the server since it was opened; reload to read it afresh`);
    await page.close();
  });
});
