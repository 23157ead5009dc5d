// Builds dist/ once before the suite so that CLI tests run the real `bge-m3` binary, and the inspection
// page's browser script (dist/inspect/client/main.js), which src/inspect/page.ts inlines even when run from source,
// and the browser bundle (dist/browser/).
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const mtime = (p: string): number => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const run = (args: string[]) => execFileSync(process.execPath, args, { stdio: 'inherit' });
  const buildClient = () => run([join(root, 'scripts/build-inspect-client.mjs')]);
  if (process.env.BGE_M3_SKIP_BUILD === '1') {
    // A quick local run skips the tsc build, but the page script is still rebuilt when missing or stale.
    const src = join(root, 'src/inspect/client');
    const newest = Math.max(...readdirSync(src).map((f) => mtime(join(src, f))));
    if (mtime(join(root, 'dist/inspect/client/main.js')) < newest) buildClient();
    return;
  }
  run([join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')]);
  buildClient();
  run([join(root, 'scripts/build-browser.mjs')]); // dist/browser/, which the browser tests' page imports
}
