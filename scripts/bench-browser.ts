/**
 * The browser bench: wasm tokens/s at 1×128 and 1×512 in headless Chromium (the bundle in a plain
 * page served with COOP/COEP, so threaded, with the FMA kernel on Web Workers where it runs) against
 * Node's in the same run, on the full-size random checkpoint (`bge-m3 bench --preset large` builds
 * it); the page's open and model-load times, its peak wasm heap (a wasm memory only grows, so its
 * size at the end is the peak) against the browser's 4 GiB, the compute path that ran in the page,
 * and WebGPU's time on SwiftShader (a CPU emulation of a GPU: correct, slow; skip with --no-webgpu).
 * Node and page reps alternate, so a busy machine weighs on both alike; the load average is printed.
 * Prints one JSON object.
 *
 * Usage: npm run build && tsx scripts/bench-browser.ts [model-dir] [--reps N] [--no-webgpu]
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BgeM3 } from '../src/m3.js';
import { defaultCacheDir } from '../src/bench/random-checkpoint.js';
import { startStaticServer, type StaticServer } from '../src/serve/static.js';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const flag = (name: string): boolean => {
  const at = args.indexOf(name);
  if (at >= 0) args.splice(at, 1);
  return at >= 0;
};
const repsAt = args.indexOf('--reps');
const reps = repsAt >= 0 ? Number(args.splice(repsAt, 2)[1]) : 5;
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got '${args[repsAt + 1] ?? ''}'`);
const webgpu = !flag('--no-webgpu');
const unknown = args.filter((a) => a.startsWith('--'));
if (unknown.length) throw new Error(`unknown flag ${unknown.join(', ')} (usage: bench-browser.ts [model-dir] [--reps N] [--no-webgpu])`);
const dir = args[0] ?? defaultCacheDir('large');
if (!existsSync(join(dir, 'config.json'))) throw new Error(`${dir}: no model (build the random one with: bge-m3 bench --preset large)`);
const SHAPES = [128, 512];
/** WebGPU runs 1×512 only when 1×128's time says it takes less than this (seconds; ~4.5× the 1×128 time). */
const WEBGPU_512_BUDGET_S = 120;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** Deterministic token ids (3 … 30002), `<s>` … `</s>`. */
const idsOf = (n: number): number[] => [0, ...Array.from({ length: n - 2 }, (_, i) => 3 + ((i * 7919) % 30000)), 2];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const loadavg = (): number[] => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
const round = (x: number, digits = 3): number => Number(x.toPrecision(digits));

interface PageModel { page: Page; openS: number; loadS: number }

/** Opens the test page (the bundle, no bundler) and loads the model there on `backend`; times both. */
async function openModel(browser: Browser, server: StaticServer, backend: string): Promise<PageModel> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const t0 = performance.now();
  await page.goto(`${server.url}test/browser/page.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  const openS = (performance.now() - t0) / 1000;
  const loadS = await page.evaluate(async ([model, b]) => {
    const w = window as unknown as { bge: any; m3: unknown };
    const s = performance.now();
    w.m3 = await w.bge.BgeM3.load(model, { backend: b });
    return (performance.now() - s) / 1000;
  }, [`${server.url}model/`, backend] as const).catch((e: Error) => {
    throw new Error(`loading the model in the page on ${backend}: ${e.message}${errors.length ? ` (page errors: ${errors.join('; ')})` : ''}`);
  });
  return { page, openS, loadS };
}

/** Seconds of one encode of `ids` in the page, timed inside it. */
const pageEncode = (page: Page, ids: number[]): Promise<number> => page.evaluate(async (row) => {
  const w = window as unknown as { m3: { encode(i: object): Promise<unknown> } };
  const s = performance.now();
  await w.m3.encode({ inputIds: [row] });
  return (performance.now() - s) / 1000;
}, ids);

/** The page's runtime, its wasm heap in bytes (wasm backend), and frees the model. */
const pageFinish = (page: Page) => page.evaluate(() => {
  const w = window as unknown as { bge: any; m3: { dispose(): void } };
  const b = w.bge.tf.backend();
  const heap: number | undefined = b.wasm?.wasmMemory?.buffer.byteLength ?? b.wasm?.HEAPU8?.byteLength;
  const runtime = w.bge.runtimeInfo();
  w.m3.dispose();
  return { heap, runtime };
});

const server = await startStaticServer({ mounts: { '/dist/': join(root, 'dist'), '/test/': join(root, 'test'), '/model/': dir } });
const result: Record<string, unknown> = { model: dir, reps, loadavg_start: loadavg() };
try {
  // wasm: Node in this process and the page, rep by rep in turn.
  const m3 = await BgeM3.load(dir, { backend: 'wasm', onWarning: () => {} });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const { page, openS, loadS } = await openModel(browser, server, 'wasm');
    const node: Record<string, number> = {};
    const inPage: Record<string, number> = {};
    const ratio: Record<string, number> = {};
    for (const n of SHAPES) {
      const ids = idsOf(n);
      await m3.encode({ inputIds: [ids] }); // warm-up
      await pageEncode(page, ids);
      const [tn, tp]: number[][] = [[], []];
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        await m3.encode({ inputIds: [ids] });
        tn.push((performance.now() - t0) / 1000);
        tp.push(await pageEncode(page, ids));
      }
      node[`1x${n}`] = round(n / median(tn));
      inPage[`1x${n}`] = round(n / median(tp));
      ratio[`1x${n}`] = round(median(tn) / median(tp));
    }
    const { heap, runtime } = await pageFinish(page);
    Object.assign(result, {
      node_wasm_tok_s: node, browser_wasm_tok_s: inPage, browser_over_node: ratio,
      browser_page_open_s: round(openS), browser_model_load_s: round(loadS),
      browser_wasm_heap_peak_mib: heap === undefined ? null : Math.round(heap / 2 ** 20), browser_wasm_heap_limit_mib: 4096,
      browser_runtime: runtime,
    });
  } finally {
    m3.dispose();
    await browser.close();
  }
  if (webgpu) {
    // WebGPU on SwiftShader: 1×128, then 1×512 if it fits the budget.
    const gpu = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'] });
    try {
      const { page, loadS } = await openModel(gpu, server, 'webgpu');
      const seconds: Record<string, number> = {};
      for (const n of SHAPES) {
        if (n > 128 && seconds['1x128']! * 4.5 > WEBGPU_512_BUDGET_S) break;
        const first = await pageEncode(page, idsOf(n)); // the first run compiles the shaders
        seconds[`1x${n}`] = round(await pageEncode(page, idsOf(n)));
        seconds[`1x${n}_first`] = round(first);
      }
      const { runtime } = await pageFinish(page);
      result.webgpu_swiftshader = { model_load_s: round(loadS), encode_s: seconds, runtime: runtime.backend };
    } finally {
      await gpu.close();
    }
  }
} finally {
  await server.close();
}
result.loadavg_end = loadavg();
process.stdout.write(`${JSON.stringify(result)}\n`);
