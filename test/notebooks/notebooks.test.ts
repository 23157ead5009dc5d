// The committed notebooks, as a reader sees them on a code-hosting page without running them. Running
// them (and comparing the fresh outputs with these) is `npm run notebooks:check`, called by .ci/run.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseKeys, formatKey } from '../../notebooks/lib/keys.js';
import { cellsWithoutOutput, countPictures, firstOutputText, problemsOf, readNotebook, stdoutOf, type Notebook } from '../../scripts/notebooks/ipynb.js';
import { checkNotebooks } from '../../scripts/notebooks/verify.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIR = join(ROOT, 'notebooks');
const NOTEBOOKS = readdirSync(DIR).filter((f) => f.endsWith('.ipynb')).sort();
const copy = (nb: Notebook): Notebook => JSON.parse(JSON.stringify(nb)) as Notebook;

describe('notebooks', () => {
  it('include notebooks 1 to 5, each linked from both READMEs', () => {
    expect(NOTEBOOKS.map((n) => n.slice(0, 2))).toEqual(expect.arrayContaining(['01', '02', '03', '04', '05']));
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const nbReadme = readFileSync(join(DIR, 'README.md'), 'utf8');
    for (const n of NOTEBOOKS) {
      expect(readme).toContain(`(notebooks/${n})`);
      expect(nbReadme).toContain(`(${n})`);
    }
  });

  describe.each(NOTEBOOKS)('%s', (name) => {
    const nb = readNotebook(join(DIR, name));

    it('runs on the tslab kernel and has its outputs committed, with no error or stderr', () => {
      expect(nb.metadata.kernelspec?.name).toBe('tslab');
      expect(cellsWithoutOutput(nb)).toEqual([]);
      expect(problemsOf(nb)).toEqual([]);
    });

    it('says first which weights it uses and that random weights show mechanics, not meaning', () => {
      const first = firstOutputText(nb);
      expect(first).toMatch(/^\*\*Weights: `test\/fixtures\/(tiny|small|sharp)-m3`\*\*/);
      expect(first).toContain('Random weights show the mechanics, not meaning');
    });

    it('has a picture and key numbers, and ends with no tensor left', () => {
      expect(countPictures(nb)).toBeGreaterThan(0);
      const keys = parseKeys(stdoutOf(nb));
      expect(keys.length).toBeGreaterThan(3);
      expect(keys.at(-1)).toEqual({ name: 'tensors left by this notebook', text: '0' });
    });

    it('fails the check when a key number moved, an error appeared or a picture is gone', () => {
      expect(checkNotebooks(nb, nb)).toEqual([]);
      const keyed = parseKeys(stdoutOf(nb)).find((k) => 'value' in k)!;
      if (!('value' in keyed)) throw new Error('no numeric key');
      const moved = copy(nb);
      const old = formatKey(keyed.name, keyed.value, keyed.tolerance);
      const now = formatKey(keyed.name, keyed.value + 10 * keyed.tolerance + 1e-3, keyed.tolerance);
      let replaced = false;
      for (const c of moved.cells) for (const o of c.outputs ?? []) {
        const text = Array.isArray(o.text) ? o.text.join('') : o.text;
        if (!replaced && o.output_type === 'stream' && text?.includes(old)) {
          o.text = text.replace(old, now);
          replaced = true;
        }
      }
      expect(replaced).toBe(true);
      expect(checkNotebooks(nb, moved).join('\n')).toContain(`${keyed.name}: committed`);

      const failed = copy(nb);
      failed.cells.find((c) => c.cell_type === 'code')!.outputs!.push({ output_type: 'stream', name: 'stderr', text: '3:1 - Cannot find name' });
      expect(checkNotebooks(nb, failed).join('\n')).toContain('stderr: 3:1 - Cannot find name');

      const silent = copy(nb);
      const lastCode = silent.cells.map((c, i) => (c.cell_type === 'code' ? i : -1)).filter((i) => i >= 0).at(-1)!;
      silent.cells[lastCode]!.outputs = [];
      expect(checkNotebooks(nb, silent).join('\n')).toContain(`cells with committed outputs printed nothing in the fresh run: ${lastCode + 1}`);

      const blank = copy(nb);
      for (const c of blank.cells) c.outputs = (c.outputs ?? []).filter((o) => !(o.data && 'image/png' in o.data));
      expect(checkNotebooks(nb, blank)).toContain('no picture (SVG or PNG output) in the notebook');
    });
  });
});
