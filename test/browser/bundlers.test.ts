/**
 * The package as a bundler user meets it: a small app (`import { BgeM3 } from 'bge-m3-tfjs'`) built
 * for production by Vite and by webpack, which read the package through its `browser` condition and
 * minify everything, tfjs included. Served with COOP/COEP the app runs the threaded wasm backend on the
 * .wasm files the bundler copied (no setWasmFolder, nothing fetched from the package's dist/) and the
 * FMA kernel on the Web Worker the bundler emitted, and its outputs equal Node's. (esbuild is the prebuilt bundle's own bundler: test/browser/browser.test.ts.)
 * This caught: the .wasm files looked up next to the app's chunk, and the minifiers breaking the
 * threaded build's pthread workers ("e is not defined"; see src/runtime/threaded-module.ts).
 * Skipped only when /usr/bin/chromium is missing.
 */
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { BgeM3, type EncodeOutput } from '../../src/m3.js';
import { startStaticServer, type StaticServer } from '../../src/serve/static.js';
import { checkpointDir, FIXTURES } from '../helpers/fixtures.js';
import { ErrorLog, loadCases, maxAbsDiff, sparseMaxAbsDiff } from '../helpers/reference.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const ROOT = join(FIXTURES, '..', '..');
const TOL = 1e-4; // as test/browser/browser.test.ts
const CKPT = 'sharp-m3';
const ids = loadCases().map((c) => c.input_ids).filter((x) => x.length <= 512); // several lengths, padded batches

/** The app: what a user writes. `window.run` loads the model and encodes the ids given. */
const MAIN = `
import { BgeM3, runtimeInfo, tf } from 'bge-m3-tfjs';
window.run = async (model, inputIds) => {
  const m3 = await BgeM3.load(model, { backend: 'wasm' });
  try {
    const before = tf.memory().numTensors;
    const out = await m3.encode({ inputIds }, { returnDense: true, returnSparse: true, returnColbert: true, batchSize: 4 });
    return {
      dense: out.denseVecs.map((v) => Array.from(v)), sparse: out.lexicalWeights,
      colbert: out.colbertVecs.map((c) => Array.from(c.data)), leaked: tf.memory().numTensors - before, runtime: runtimeInfo(),
    };
  } finally {
    m3.dispose();
  }
};
document.body.dataset.ready = 'true';
`;
const HTML = '<!doctype html><html><head><meta charset="utf-8"></head><body><script type="module" src="./main.js"></script></body></html>';

/** A fresh app folder whose node_modules/bge-m3-tfjs is this repository (its dist/ as `npm run build` left it). */
function makeApp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bge-m3-app-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'bge-m3-tfjs'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  writeFileSync(join(dir, 'main.js'), MAIN);
  writeFileSync(join(dir, 'index.html'), HTML);
  return dir;
}

async function buildVite(app: string): Promise<string> {
  const { build } = await import('vite');
  await build({ root: app, logLevel: 'error', configFile: false, build: { outDir: join(app, 'out'), chunkSizeWarningLimit: 1e9 } });
  return join(app, 'out');
}

async function buildWebpack(app: string): Promise<string> {
  const { default: webpack } = await import('webpack');
  const out = join(app, 'out');
  const stats = await new Promise<import('webpack').Stats>((resolve, reject) => {
    webpack({
      mode: 'production', context: app, entry: './main.js', experiments: { topLevelAwait: true }, performance: { hints: false },
      output: { path: out, filename: 'main.js', publicPath: 'auto' },
      resolve: { modules: [join(app, 'node_modules'), join(ROOT, 'node_modules')] },
    }, (err, s) => (err || !s ? reject(err) : resolve(s)));
  });
  if (stats.hasErrors()) throw new Error(stats.toString({ all: false, errors: true }));
  const warnings = stats.toJson({ all: false, warnings: true }).warnings ?? [];
  expect(warnings.map((w) => w.message)).toEqual([]); // e.g. "Critical dependency: the request of a dependency is an expression"
  writeFileSync(join(out, 'index.html'), HTML);
  return out;
}

interface AppOutput {
  dense: number[][]; sparse: Record<string, number>[]; colbert: number[][]; leaked: number;
  runtime: { crossOriginIsolated: boolean; wasmThreads: { requested: number; actual?: number; fallbackReason?: string }; matMul: string; kernel?: { active: boolean; threads?: number } };
}

describe.skipIf(!haveChromium)('bge-m3-tfjs through a bundler, in Chromium', () => {
  let browser: Browser;
  let node: EncodeOutput;
  const servers: StaticServer[] = [];

  beforeAll(async () => {
    const m3 = await BgeM3.load(checkpointDir(CKPT), { backend: 'wasm' });
    node = await m3.encode({ inputIds: ids }, { returnDense: true, returnSparse: true, returnColbert: true, batchSize: 4 });
    m3.dispose();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
    for (const s of servers) await s.close();
  });

  /** Serves the app's build (with COOP/COEP when `isolate`) and the fixture; runs it; checks it against Node. */
  async function runApp(label: string, out: string, isolate: boolean): Promise<void> {
    const server = await startStaticServer({ isolate, mounts: { '/model/': checkpointDir(CKPT), '/': out } });
    servers.push(server);
    const page = await browser.newPage();
    const errors: string[] = [];
    const wasmFrom: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
    const missing: string[] = []; // 404s: only the loader's probes for a head's other file name may fail
    page.on('response', (r) => { if (r.status() >= 400) missing.push(new URL(r.url()).pathname); });
    const scripts: string[] = []; // every script the page asked for (the kernel's worker among them)
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (/\.wasm$/.test(path)) wasmFrom.push(path);
      if (/\.js$/.test(path)) scripts.push(path);
    });
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 });
    const got = await page.evaluate(([m, i]) => (window as unknown as { run(...a: unknown[]): Promise<AppOutput> }).run(m, i), [`${server.url}model/`, ids] as const);
    console.log(`${label}: ${JSON.stringify(got.runtime)}; .wasm fetched: ${wasmFrom.join(', ')}`);
    expect(errors).toEqual([]);
    expect(missing.filter((p) => !/^\/model\/(colbert_linear|sparse_linear)\.safetensors$/.test(p))).toEqual([]);
    expect(got.runtime.crossOriginIsolated).toBe(isolate);
    if (isolate) {
      expect(got.runtime.wasmThreads.requested).toBeGreaterThan(1);
      expect(got.runtime.wasmThreads.actual).toBe(got.runtime.wasmThreads.requested);
      expect(got.runtime.kernel?.active, got.runtime.matMul).toBe(true); // on the worker the bundler emitted
    } else {
      expect(got.runtime.wasmThreads.actual).toBe(1);
    }
    expect(got.runtime.wasmThreads.fallbackReason ?? '').not.toMatch(/failed/);
    expect(wasmFrom.length).toBeGreaterThan(0);
    for (const p of [...wasmFrom, ...scripts]) expect(existsSync(join(out, p)), p).toBe(true); // the app's own copies
    const log = new ErrorLog(`${label}: app vs Node`);
    for (let i = 0; i < ids.length; i++) {
      expect(log.add('dense', maxAbsDiff(got.dense[i]!, node.denseVecs![i]!))).toBeLessThanOrEqual(TOL);
      expect(log.add('lexical weights', sparseMaxAbsDiff(got.sparse[i]!, node.lexicalWeights![i]!))).toBeLessThanOrEqual(TOL);
      expect(log.add('colbert', maxAbsDiff(got.colbert[i]!, node.colbertVecs![i]!.data))).toBeLessThanOrEqual(TOL);
    }
    expect(got.leaked).toBe(0);
    log.print();
    await page.close();
  }

  it('Vite (production build): threaded and single-threaded pages equal Node', { timeout: 300_000 }, async () => {
    const out = await buildVite(makeApp());
    await runApp('Vite, threaded', out, true);
    await runApp('Vite, one thread', out, false);
  });

  it('webpack (production build, terser): the threaded page equals Node, and the build has no warning', { timeout: 400_000 }, async () => {
    const out = await buildWebpack(makeApp());
    await runApp('webpack, threaded', out, true);
  });
});
