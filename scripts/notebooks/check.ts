/**
 * Executes every notebook top to bottom with Jupyter's own machinery (Debian's jupyter-nbconvert and
 * nbclient, our tslab kernel) into a temporary copy, and checks it:
 *   - no error output and no stderr text in any cell;
 *   - the committed notebook reads as a reader sees it (verify.ts, readerProblems): outputs and execution
 *     counts on every code cell, no code line over 100 columns, no key line in sight, every Markdown
 *     table's rows as wide as its header, every picture with marks in its plot area, no repeated
 *     section number;
 *   - the key numbers (cell metadata, see notebooks/lib/keys.ts) equal the committed ones within their
 *     tolerance;
 *   - at least one picture, and a first output that names the weights.
 *
 *   npx tsx scripts/notebooks/check.ts [--update] [NAME.ipynb ...]
 *
 * The notebooks run on the bundled fixture checkpoint here (BGE_M3_NOTEBOOK_WEIGHTS=fixture) whatever is
 * in weights/, so that the committed outputs can be compared. --update writes each executed notebook
 * back in place of the committed one (only when it ran clean), which is how the outputs are made.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { KEYS_ENV, parseKeys } from '../../notebooks/lib/keys.js';
import { asRead, forCommit, keyText, problemsOf, readNotebook } from './ipynb.js';
import { checkRun, readerProblems } from './verify.js';
import { KERNEL_NAME, NOTEBOOK_DIR, installKernelSpec, jupyterEnv, requireCommand } from './kernel.js';

/** Seconds a single cell may run before the check gives up (a hang is a failure, not a wait). */
const CELL_TIMEOUT_S = 300;

/** Runs one notebook with nbconvert into `outDir` (stopping at the first failing cell unless allowErrors). */
function nbconvert(file: string, outDir: string, allowErrors: boolean) {
  return spawnSync('jupyter-nbconvert', [
    '--to', 'notebook', '--execute', ...(allowErrors ? ['--allow-errors'] : []),
    `--ExecutePreprocessor.kernel_name=${KERNEL_NAME}`,
    `--ExecutePreprocessor.timeout=${CELL_TIMEOUT_S}`,
    // the kernel's start (Node, tslab's compiler) can pass Jupyter's default 60 s on a busy machine
    `--ExecutePreprocessor.startup_timeout=${CELL_TIMEOUT_S}`,
    '--output-dir', outDir, '--output', basename(file), file,
  ], { cwd: NOTEBOOK_DIR, env: jupyterEnv({ BGE_M3_NOTEBOOK_WEIGHTS: 'fixture', [KEYS_ENV]: '1' }), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Executes one notebook; returns the executed copy's path, or what went wrong. tslab reports a failing
 * cell's message on stderr, not in the error reply that nbconvert prints, so after a failure the notebook
 * runs once more with errors allowed to collect the messages.
 */
function execute(file: string, outDir: string): { out?: string; failure?: string; seconds: number } {
  const start = performance.now();
  const r = nbconvert(file, outDir, false);
  const seconds = (performance.now() - start) / 1000;
  if (r.status === 0) return { out: join(outDir, basename(file)), seconds };
  let detail = `${r.error?.message ?? ''}${r.stderr.split('\n').slice(-25).join('\n')}`;
  if (nbconvert(file, outDir, true).status === 0) {
    const messages = problemsOf(readNotebook(join(outDir, basename(file))));
    if (messages.length > 0) detail = messages.join('\n');
  }
  return { failure: detail, seconds };
}

function main(): number {
  const { values, positionals } = parseArgs({ options: { update: { type: 'boolean', default: false } }, allowPositionals: true });
  requireCommand('jupyter-nbconvert', 'jupyter-nbconvert python3-nbclient');
  installKernelSpec();
  const all = readdirSync(NOTEBOOK_DIR).filter((f) => f.endsWith('.ipynb')).sort();
  const names = positionals.length > 0 ? positionals.map((p) => basename(p)) : all;
  for (const n of names) if (!all.includes(n)) throw new Error(`${n}: no such notebook in notebooks/ (have: ${all.join(', ')})`);
  const outDir = mkdtempSync(join(tmpdir(), 'bge-m3-notebooks-'));
  let failed = 0;
  try {
    for (const name of names) {
      const committedFile = join(NOTEBOOK_DIR, name);
      const run = execute(committedFile, outDir);
      let problems: string[];
      if (run.failure !== undefined) {
        problems = [`execution failed:\n${run.failure}`];
      } else if (values.update) {
        problems = readerProblems(asRead(readNotebook(run.out!)));
        if (problems.length === 0) {
          const tmp = `${committedFile}.tmp`;
          writeFileSync(tmp, forCommit(readNotebook(run.out!)));
          renameSync(tmp, committedFile);
        }
      } else {
        problems = checkRun(committedFile, run.out!);
      }
      const keys = run.out ? parseKeys(keyText(asRead(readNotebook(run.out)))).length : 0;
      console.log(`${problems.length === 0 ? 'ok  ' : 'FAIL'} ${name}  ${run.seconds.toFixed(1)} s  ${keys} key numbers${values.update && problems.length === 0 ? '  (outputs written)' : ''}`);
      for (const p of problems) console.log(`     ${p.replace(/\n/g, '\n     ')}`);
      if (problems.length > 0) failed++;
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  console.log(`notebooks: ${names.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(`notebooks:check: ${(e as Error).message}`);
  process.exitCode = 2;
}
