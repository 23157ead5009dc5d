// Builds dist/ once before the suite so that CLI tests run the real `bge-m3` binary.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export default function setup(): void {
  if (process.env.BGE_M3_SKIP_BUILD === '1') return; // for a quick local run of tests that do not spawn the CLI
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], {
    stdio: 'inherit',
  });
}
