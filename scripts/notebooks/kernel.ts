/**
 * The notebooks' kernel: tslab (TypeScript on Node) from notebooks/node_modules, registered with
 * Jupyter by writing its kernel spec into a project-local folder that `JUPYTER_PATH` points to. Nothing
 * is written to the user's or the system's Jupyter folders.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const NOTEBOOK_DIR = join(ROOT, 'notebooks');
/**
 * The notebooks' own npm project (notebooks/package.json: tslab, vega, resvg). It is kept apart from the
 * library because tslab's TypeScript fork would take over the root's `tsc` command.
 */
const NOTEBOOK_MODULES = join(NOTEBOOK_DIR, 'node_modules');
/** Project-local Jupyter data folder (inside node_modules: ignored by git, gone with a clean install). */
export const JUPYTER_DATA = join(NOTEBOOK_MODULES, '.cache', 'jupyter');

/** Installs the notebooks' npm project (`npm ci --prefix notebooks`) when it is not there yet. */
export function ensureNotebookDeps(): void {
  if (existsSync(join(NOTEBOOK_MODULES, 'tslab', 'bin', 'tslab'))) return;
  console.log('installing the notebooks\' tools: npm ci --prefix notebooks');
  execFileSync('npm', ['ci', '--prefix', NOTEBOOK_DIR, '--no-audit', '--no-fund'], { stdio: 'inherit' });
}
export const KERNEL_NAME = 'tslab';

/** Writes the tslab kernel spec (running tslab with the Node that runs this script); returns its path. */
export function installKernelSpec(): string {
  ensureNotebookDeps();
  const tslab = join(NOTEBOOK_MODULES, 'tslab', 'bin', 'tslab');
  if (!existsSync(tslab)) throw new Error(`${tslab} is missing: run npm ci --prefix notebooks`);
  const dir = join(JUPYTER_DATA, 'kernels', KERNEL_NAME);
  mkdirSync(dir, { recursive: true });
  const spec = {
    argv: [process.execPath, tslab, 'kernel', '--config-path', '{connection_file}'],
    display_name: 'TypeScript (tslab)',
    language: 'typescript',
  };
  const file = join(dir, 'kernel.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(spec, null, 1) + '\n');
  renameSync(`${file}.tmp`, file);
  return file;
}

/** The environment Jupyter runs in: our kernel spec first on JUPYTER_PATH. */
export function jupyterEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const path = [JUPYTER_DATA, process.env['JUPYTER_PATH']].filter(Boolean).join(':');
  return { ...process.env, JUPYTER_PATH: path, ...extra };
}

/** Throws a message saying which Debian package to install when a Jupyter command is missing. */
export function requireCommand(command: string, debianPackages: string): void {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`'${command}' was not found: install Debian's ${debianPackages} (apt-get install --no-install-recommends ${debianPackages})`);
  }
}
