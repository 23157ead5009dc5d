/**
 * The tensor-name <-> file map (src/weights/checkpoint-files.ts) covers the weight description and is
 * the only place that spells a snapshot's weight file names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { expectedShapes } from '../../src/model/params.js';
import { openSnapshot } from '../../src/weights/snapshot.js';
import { CHECKPOINT_PARTS, HEAD_PARTS, locateTensor, partFiles, splitByPart, tensorName } from '../../src/weights/checkpoint-files.js';
import { checkpointDir } from '../helpers/fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : files(rel);
    return /\.(ts|mts|mjs|js)$/.test(e.name) ? [rel] : [];
  });
}

describe('checkpoint files', () => {
  it('routes every tensor of the weight description to one part and back, heads by their module name', async () => {
    const config = await loadConfig(join(checkpointDir('tiny-m3'), 'config.json'));
    const names = [...expectedShapes(config, 32).keys()];
    const split = splitByPart(names.map((name) => ({ name })));
    expect(CHECKPOINT_PARTS.reduce((n, p) => n + split[p].length, 0)).toBe(names.length);
    for (const head of HEAD_PARTS) expect(split[head].map((t) => t.name)).toEqual(['weight', 'bias']);
    expect(split.encoder.map((t) => t.name)).toEqual(names.filter((n) => !HEAD_PARTS.some((h) => n.startsWith(`${h}.`))));
    for (const name of names) {
      const { part, key } = locateTensor(name);
      expect(tensorName(part, key)).toBe(name);
    }
    // The heads are the weight tree's own top-level modules.
    const top = new Set(names.map((n) => n.slice(0, n.indexOf('.'))));
    for (const head of HEAD_PARTS) expect(top.has(head)).toBe(true);
  });

  it('is what the snapshot loader reads: each part from its file, the key without the head prefix', async () => {
    const snap = await openSnapshot(checkpointDir('tiny-m3'), expectedShapes);
    try {
      for (const part of CHECKPOINT_PARTS) expect([partFiles(part).safetensors, partFiles(part).torch]).toContain(snap.files[part].split('/').pop());
      expect(snap.locate('colbert_linear.bias')).toEqual({ file: snap.files.colbert_linear, key: 'bias' });
      expect(snap.locate('encoder.layer.0.output.dense.weight')).toEqual({ file: snap.files.encoder, key: 'encoder.layer.0.output.dense.weight' });
    } finally {
      await snap.close();
    }
  });

  it('no source file outside checkpoint-files.ts spells a weight file name in a string', () => {
    const names = CHECKPOINT_PARTS.flatMap((p) => [partFiles(p).safetensors, partFiles(p).torch]);
    const quoted = new RegExp(`['"\`](?:[^'"\`\\n]*/)?(${names.map((n) => n.replace(/\./g, '\\.')).join('|')})['"\`]`);
    const offenders: string[] = [];
    for (const file of [...files('src'), ...files('scripts')]) {
      if (file === 'src/weights/checkpoint-files.ts') continue;
      const code = readFileSync(join(ROOT, file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, '')) // block comments (lines kept)
        .replace(/^\s*\/\/.*$/gm, '') // line comments
        .replace(/\s\/\/ .*$/gm, '');
      code.split('\n').forEach((line, i) => { if (quoted.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`); });
    }
    if (offenders.length) console.log(`weight file names written outside src/weights/checkpoint-files.ts:\n  ${offenders.join('\n  ')}`);
    expect(offenders).toEqual([]);
  });
});
