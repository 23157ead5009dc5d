// Bundles the browser entry (dist/browser.js, built by tsc) into dist/browser/index.js: one ES module
// with tfjs inlined, the package.json `browser` field swapping the Node-only modules (as any bundler
// does), and tfjs-backend-wasm's .wasm files copied next to it; and the FMA kernel's Web Worker
// (dist/host/kernel-worker.browser.js) into a self-contained module of the same name beside it, where
// the bundle's `new URL('./kernel-worker.browser.js', import.meta.url)` finds it. Refuses any `node:`
// import left in either bundle: the list of what it found is the error.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'browser');
// Where else to look for packages, as Node's NODE_PATH (e.g. a dependency installed outside node_modules).
const nodePaths = process.env.NODE_PATH ? process.env.NODE_PATH.split(':') : [];

/** Is `@tensorflow/tfjs-backend-webgpu` installed (a dependency; absent until `npm ci` on older checkouts)? */
export function haveWebgpu() {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-webgpu', { paths: [root, ...nodePaths] });
    return true;
  } catch {
    return false;
  }
}

/** The kernel's worker module, bundled whole (it imports kernels/worker-loop.js) to sit next to index.js. */
export const KERNEL_WORKER = 'kernel-worker.browser.js';

/**
 * Bundles `entry` for browsers, and the kernel's worker next to `outfile`; returns esbuild's metafile
 * of the entry's bundle. Exported for the bundle test.
 */
export async function bundleBrowser(entry = join(root, 'dist', 'browser.js'), outfile = join(out, 'index.js'), write = true) {
  const meta = await bundle(entry, outfile, write);
  await bundle(join(root, 'dist', 'host', KERNEL_WORKER), join(dirname(outfile), KERNEL_WORKER), write);
  return meta;
}

/** One esbuild bundle for browsers (an ES module); throws when a `node:` import is left in it. */
async function bundle(entry, outfile, write) {
  const webgpu = haveWebgpu();
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    write,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: write,
    metafile: true,
    logLevel: 'silent',
    legalComments: 'linked',
    nodePaths,
    // Without the webgpu package the bundle still builds; backend 'webgpu' then says it is missing.
    external: webgpu ? [] : ['@tensorflow/tfjs-backend-webgpu'],
  });
  const nodeImports = Object.keys(result.metafile.inputs).filter((k) => /^node:|^\(disabled\):node:/.test(k));
  const outputs = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
  if (write && !webgpu) console.warn('build-browser: @tensorflow/tfjs-backend-webgpu is not installed (npm ci): the bundle has no webgpu backend');
  const bad = [...nodeImports, ...outputs.filter((p) => p.startsWith('node:'))];
  if (bad.length > 0) throw new Error(`the browser bundle ${outfile} imports Node modules: ${bad.join(', ')}`);
  return result.metafile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  mkdirSync(out, { recursive: true });
  await bundleBrowser();
  const wasmDir = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir, f), join(out, f));
  // The threaded build's glue, run as it ships by each pthread worker (src/runtime/threaded-module.ts).
  const glue = 'tfjs-backend-wasm-threaded-simd.js';
  copyFileSync(join(wasmDir, '..', 'wasm-out', glue), join(out, glue));
}
