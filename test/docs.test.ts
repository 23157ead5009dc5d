/**
 * What the documentation tells a new user to type: `npx bge-m3 …` outside a project that has this
 * package would fetch the unrelated npm package named `bge-m3`, so the docs, the notebooks and every
 * command's help name the package (`npx -p bge-m3-tfjs bge-m3 …`).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BARE_NPX = /npx\s+bge-m3\b/;

describe('the docs, the notebooks and the CLI help', () => {
  const files = [
    'README.md', 'notebooks/README.md', 'notebooks/lib/setup.ts',
    ...readdirSync(join(ROOT, 'notebooks')).filter((f) => f.endsWith('.ipynb')).map((f) => `notebooks/${f}`),
    ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
    ...readdirSync(join(ROOT, 'src', 'cli')).filter((f) => f.endsWith('.ts')).map((f) => `src/cli/${f}`),
  ];

  it.each(files)('%s never says `npx bge-m3` without -p bge-m3-tfjs', (file) => {
    const bad = readFileSync(join(ROOT, file), 'utf8').split('\n').map((l, i) => [i + 1, l] as const).filter(([, l]) => BARE_NPX.test(l));
    expect(bad.map(([n, l]) => `${file}:${n}: ${l.trim()}`)).toEqual([]);
  });

  it('the README shows the download with the package named', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('npx -p bge-m3-tfjs bge-m3 download');
  });
});
