/**
 * `bge-m3 demo` on the bundled checkpoint, as a newcomer first runs it (no real weights, an empty
 * Hugging Face cache): it must say the weights are random, and its scores must tell the pairs apart.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REAL_WEIGHTS } from '../../src/cli/demo.js';
import { BUNDLED_CHECKPOINT } from '../../src/package-files.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');

/** The rows of the matrix printed under `title` ("  [a, b]" lines). */
function matrixAfter(stdout: string, title: string): number[][] {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith(title));
  expect(at, `no '${title}' section in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  const rows: number[][] = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^\s+\[(.*)\]$/.exec(l);
    if (!m) break;
    rows.push(m[1]!.split(',').map(Number));
  }
  return rows;
}

describe('bge-m3 demo on the bundled checkpoint', () => {
  it('says its weights are random and gives different scores to different pairs', () => {
    // Without real weights the demo falls back to the bundled checkpoint; with them (a developer's
    // machine), the bundled one is named explicitly.
    const args = existsSync(join(REAL_WEIGHTS, 'config.json')) ? ['demo', '--model', BUNDLED_CHECKPOINT] : ['demo'];
    const hub = mkdtempSync(join(tmpdir(), 'bge-m3-demo-hub-'));
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, HF_HUB_CACHE: hub, HF_HOME: hub } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/RANDOM/);
    const dense = matrixAfter(r.stdout, 'dense similarity').flat();
    const colbert = matrixAfter(r.stdout, 'ColBERT score').flat();
    expect(dense).toHaveLength(4);
    expect(colbert).toHaveLength(4);
    for (const [name, values] of [['dense', dense], ['ColBERT', colbert]] as const) {
      const spread = Math.max(...values) - Math.min(...values);
      console.log(`demo ${name} scores ${values.join(' ')}: spread ${spread.toFixed(4)}`);
      expect(values.every(Number.isFinite)).toBe(true);
      expect(spread, `${name} scores ${values.join(', ')} do not tell the pairs apart`).toBeGreaterThanOrEqual(0.005);
    }
    expect(r.stdout).toContain(`model: ${BUNDLED_CHECKPOINT}`);
  });
});
