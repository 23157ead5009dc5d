/**
 * Files of the installed package that code reads at run time (Node only): the package root, its
 * version, the bundled demo checkpoint and the PyTorch baseline script of `bench`. Every path is found
 * relative to this module, so it holds from the repository and from an installed tarball alike.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: this module is src/package-files.ts or dist/package-files.js, one level down. */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The tiny checkpoint shipped in the tarball (2 layers, hidden 32, vocabulary 8002; RANDOM weights).
 * It is the `sharp-m3` test fixture: its Linear matrices are drawn with std 1/sqrt(fan_in), so its
 * outputs differ from text to text (the `tiny-m3` fixture's N(0, 0.02) weights collapse every dense
 * vector to nearly the same one).
 */
export const BUNDLED_CHECKPOINT = join(PACKAGE_ROOT, 'test', 'fixtures', 'sharp-m3');

/** The PyTorch encoder `bench` compares against (shipped in the tarball). */
export const TORCH_BENCH_SCRIPT = join(PACKAGE_ROOT, 'scripts', 'bench_torch.py');

/** The `version` of the package's package.json. */
export function packageVersion(): string {
  const path = join(PACKAGE_ROOT, 'package.json');
  const version = (JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown }).version;
  if (typeof version !== 'string') throw new Error(`${path}: no "version"`);
  return version;
}
