/**
 * The browser bench: wasm tokens/s at 1×128 and 1×512 in headless Chromium (the bundle in a plain
 * page served with COOP/COEP, so threaded) against Node's in the same run, on the full-size random
 * checkpoint (`bge-m3 bench --preset large` builds it), and the wasm heap the page ends with. Prints
 * one JSON object. Usage: npm run build && tsx scripts/bench-browser.ts [model-dir] [--reps N]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { BgeM3 } from '../src/m3.js';
import { defaultCacheDir } from '../src/bench/random-checkpoint.js';
import { startStaticServer } from '../src/serve/static.js';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const repsAt = args.indexOf('--reps');
const reps = repsAt >= 0 ? Number(args.splice(repsAt, 2)[1]) : 3;
const dir = args[0] ?? defaultCacheDir('large');
if (!existsSync(join(dir, 'config.json'))) throw new Error(`${dir}: no model (build the random one with: bge-m3 bench --preset large)`);
const SHAPES = [128, 512];

/** Deterministic token ids (3 … 30002), `<s>` … `</s>`. */
const idsOf = (n: number): number[] => [0, ...Array.from({ length: n - 2 }, (_, i) => 3 + ((i * 7919) % 30000)), 2];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// Node.
const m3 = await BgeM3.load(dir, { backend: 'wasm', onWarning: () => {} });
const node: Record<string, number> = {};
for (const n of SHAPES) {
  await m3.encode({ inputIds: [idsOf(n)] }); // warm-up
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await m3.encode({ inputIds: [idsOf(n)] });
    times.push(performance.now() - t0);
  }
  node[`1x${n}`] = n / (median(times) / 1000);
}
m3.dispose();

// Chromium.
const server = await startStaticServer({ mounts: { '/dist/': join(root, 'dist'), '/test/': join(root, 'test'), '/model/': dir } });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}test/browser/page.html`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  const inPage = await page.evaluate(async ([model, shapes, ids, n]) => {
    const bge = (window as unknown as { bge: any }).bge;
    const t0 = performance.now();
    const m = await bge.BgeM3.load(model, { backend: 'wasm' });
    const loadS = (performance.now() - t0) / 1000;
    const tokS: Record<string, number> = {};
    for (const [k, len] of (shapes as number[]).entries()) {
      const row = (ids as number[][])[k]!;
      await m.encode({ inputIds: [row] });
      const times: number[] = [];
      for (let r = 0; r < (n as number); r++) {
        const s = performance.now();
        await m.encode({ inputIds: [row] });
        times.push(performance.now() - s);
      }
      tokS[`1x${len}`] = len / ([...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]! / 1000);
    }
    const mem = bge.tf.backend().wasm?.wasmMemory?.buffer.byteLength ?? bge.tf.backend().wasm?.HEAPU8?.byteLength;
    const out = { loadS, tokS, wasmHeapBytes: mem, runtime: bge.runtimeInfo() };
    m.dispose();
    return out;
  }, [`${server.url}model/`, SHAPES, SHAPES.map(idsOf), reps] as const);
  const ratio = Object.fromEntries(SHAPES.map((n) => [`1x${n}`, inPage.tokS[`1x${n}`]! / node[`1x${n}`]!]));
  process.stdout.write(`${JSON.stringify({
    model: dir, reps, node_wasm_tok_s: node, browser_wasm_tok_s: inPage.tokS, browser_over_node: ratio,
    browser_load_s: inPage.loadS, browser_wasm_heap_mb: inPage.wasmHeapBytes / 2 ** 20, browser_runtime: inPage.runtime,
  })}\n`);
} finally {
  await browser.close();
  await server.close();
}
