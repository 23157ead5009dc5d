/**
 * `npm run notebooks`: registers the project's tslab kernel (see kernel.ts) and opens notebooks/ in
 * Jupyter Notebook. Extra arguments go to Jupyter (e.g. `npm run notebooks -- --no-browser --port 8899`).
 */
import { spawn } from 'node:child_process';
import { installKernelSpec, jupyterEnv, NOTEBOOK_DIR, requireCommand } from './kernel.js';

try {
  requireCommand('jupyter-notebook', 'jupyter-notebook');
  const spec = installKernelSpec();
  console.log(`kernel spec: ${spec}\nopening ${NOTEBOOK_DIR} (choose the kernel "TypeScript (tslab)")`);
  // Jupyter refuses to run as root unless told; root is the usual user on this project's machines.
  const asRoot = process.getuid?.() === 0 ? ['--allow-root'] : [];
  const child = spawn('jupyter-notebook', [`--notebook-dir=${NOTEBOOK_DIR}`, ...asRoot, ...process.argv.slice(2)], {
    cwd: NOTEBOOK_DIR, env: jupyterEnv(), stdio: 'inherit',
  });
  child.on('exit', (code, signal) => { process.exitCode = code ?? (signal ? 1 : 0); });
} catch (e) {
  console.error(`notebooks: ${(e as Error).message}`);
  process.exitCode = 2;
}
