// The committed notebooks, as a reader sees them on a code-hosting page without running them. Running
// them (and comparing the fresh outputs with these) is `npm run notebooks:check`, called by .ci/run.
// Each defect a reader once met is put back into a real committed notebook here, and the check must
// fail on it: an empty chart, a garbled table, a key line in sight, prompts without execution counts,
// an over-long code line, a repeated section number.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseKeys, formatKey, KEYS_METADATA } from '../../notebooks/lib/keys.js';
import {
  asRead, cellsWithoutOutput, countPictures, firstOutputText, joinText, keyText, problemsOf, readNotebook, type Notebook, type Output,
} from '../../scripts/notebooks/ipynb.js';
import { checkNotebooks, readerProblems } from '../../scripts/notebooks/verify.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIR = join(ROOT, 'notebooks');
const NOTEBOOKS = readdirSync(DIR).filter((f) => f.endsWith('.ipynb')).sort();
const copy = (nb: Notebook): Notebook => JSON.parse(JSON.stringify(nb)) as Notebook;
/** The chart notebook 01 once committed: a log scale over values that include 0, so no bar is drawn. */
const EMPTY_CHART = readFileSync(join(ROOT, 'test', 'fixtures', 'notebooks', '01-empty-log-scale-chart.png')).toString('base64');

/**
 * A committed notebook as a fresh run would come out of nbconvert: the key lines printed on stdout,
 * and the committed metadata copied along (stale: the check must not read it).
 */
function asRun(nb: Notebook): Notebook {
  const run = copy(nb);
  for (const c of run.cells) {
    const lines = c.metadata[KEYS_METADATA] as string[] | undefined;
    if (lines) c.outputs!.push({ output_type: 'stream', name: 'stdout', text: lines.map((l) => `${l}\n`).join('') });
  }
  return run;
}

/** Every output of the notebook with its cell index. */
const outputs = (nb: Notebook) => nb.cells.flatMap((c, i) => (c.outputs ?? []).map((o) => ({ i, o })));
/** The first Markdown output holding a table. */
const firstTable = (nb: Notebook): Output | undefined =>
  outputs(nb).map((x) => x.o).find((o) => /\n\| --- \|/.test(joinText(o.data?.['text/markdown'] as string | undefined)));

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

  it("01's old empty chart (a log scale over zeros) has no marks; the chart that replaced it has", () => {
    const nb = readNotebook(join(DIR, '01-text-to-lexical-weights.ipynb'));
    expect(readerProblems(nb)).toEqual([]);
    const tampered = copy(nb);
    // the layer-0 chart is the second picture of the notebook
    const pictures = outputs(tampered).filter(({ o }) => o.data && 'image/png' in o.data);
    expect(pictures.length).toBeGreaterThan(1);
    pictures[1]!.o.data!['image/png'] = EMPTY_CHART;
    const problems = readerProblems(tampered).join('\n');
    expect(problems).toContain(`committed: cell ${pictures[1]!.i + 1}: a picture with no marks in its plot area (0 coloured pixels)`);
    expect(checkNotebooks(nb, asRun(tampered)).join('\n')).toContain('a picture with no marks');
  });

  it("02's ablation table with its header's | unescaped is garbled, and the check says so", () => {
    const nb = readNotebook(join(DIR, '02-inside-the-layers.ipynb'));
    const tampered = copy(nb);
    const escaped = 'max &#124;Δ lexical&#124;';
    const table = outputs(tampered).map((x) => x.o).find((o) => joinText(o.data?.['text/markdown'] as string | undefined).includes(escaped));
    expect(table).toBeDefined();
    table!.data!['text/markdown'] = joinText(table!.data!['text/markdown'] as string).replace(escaped, 'max |Δ lexical|');
    expect(readerProblems(tampered).join('\n')).toMatch(/header has 7 columns, the delimiter row 5/);
  });

  describe.each(NOTEBOOKS)('%s', (name) => {
    const nb = readNotebook(join(DIR, name));

    it('runs on the tslab kernel and reads clean: outputs, execution counts, tables, pictures, ≤ 100 columns', () => {
      expect(nb.metadata.kernelspec?.name).toBe('tslab');
      expect(cellsWithoutOutput(nb)).toEqual([]);
      expect(problemsOf(nb)).toEqual([]);
      expect(readerProblems(nb)).toEqual([]);
    });

    it('says first which weights it uses and that random weights show mechanics, not meaning', () => {
      const first = firstOutputText(nb);
      expect(first).toMatch(/^\*\*Weights: `test\/fixtures\/(tiny|small|sharp)-m3`\*\*/);
      expect(first).toContain('Random weights show the mechanics, not meaning');
    });

    it('shows what changes with the real weights', () => {
      const shown = outputs(nb).map(({ o }) => joinText(o.data?.['text/markdown'] as string | undefined)).join('\n');
      expect(shown).toContain('**What changes with the real weights**');
    });

    it('has a picture and key numbers out of sight, and ends with no tensor left', () => {
      expect(countPictures(nb)).toBeGreaterThan(0);
      const keys = parseKeys(keyText(nb));
      expect(keys.length).toBeGreaterThan(3);
      expect(keys.at(-1)).toEqual({ name: 'tensors left by this notebook', text: '0' });
      expect(nb.cells.some((c) => Array.isArray(c.metadata[KEYS_METADATA]))).toBe(true);
    });

    it('fails the check when a key number moved or is gone, an error appeared or a picture is gone', () => {
      expect(checkNotebooks(nb, asRun(nb))).toEqual([]);
      expect(asRead(asRun(nb)).cells.map((c) => c.metadata[KEYS_METADATA])).toEqual(nb.cells.map((c) => c.metadata[KEYS_METADATA]));
      const keyed = parseKeys(keyText(nb)).find((k) => 'value' in k)!;
      if (!('value' in keyed)) throw new Error('no numeric key');
      const old = formatKey(keyed.name, keyed.value, keyed.tolerance);
      const now = formatKey(keyed.name, keyed.value + 10 * keyed.tolerance + 1e-3, keyed.tolerance);
      const run = asRun(nb);
      const printed = run.cells.flatMap((c) => c.outputs ?? []).find((o) => o.output_type === 'stream' && joinText(o.text).includes(old))!;
      const moved = joinText(printed.text).replace(old, now);
      printed.text = moved;
      expect(checkNotebooks(nb, run).join('\n')).toContain(`${keyed.name}: committed`);
      // a key the fresh run no longer prints is missed, though the executed copy still carries the
      // committed metadata
      printed.text = moved.replace(`${now}\n`, '');
      expect(checkNotebooks(nb, run).join('\n')).toContain(`${keyed.name}: in the committed outputs, not printed by the fresh run`);

      const failed = asRun(nb);
      failed.cells.find((c) => c.cell_type === 'code')!.outputs!.push({ output_type: 'stream', name: 'stderr', text: '3:1 - Cannot find name' });
      expect(checkNotebooks(nb, failed).join('\n')).toContain('stderr: 3:1 - Cannot find name');

      const silent = asRun(nb);
      const lastCode = silent.cells.map((c, i) => (c.cell_type === 'code' ? i : -1)).filter((i) => i >= 0).at(-1)!;
      silent.cells[lastCode]!.outputs = [];
      expect(checkNotebooks(nb, silent).join('\n')).toContain(`cells with committed outputs printed nothing in the fresh run: ${lastCode + 1}`);

      const blank = asRun(nb);
      for (const c of blank.cells) c.outputs = (c.outputs ?? []).filter((o) => !(o.data && 'image/png' in o.data));
      expect(checkNotebooks(nb, blank)).toContain('no picture (SVG or PNG output) in the notebook');
    });

    it('fails the check on an empty chart, a garbled table, a key line in sight, no execution counts, a long line, a repeated section', () => {
      const empty = copy(nb);
      const picture = outputs(empty).find(({ o }) => o.data && 'image/png' in o.data)!;
      picture.o.data!['image/png'] = EMPTY_CHART;
      expect(readerProblems(empty).join('\n')).toContain(`cell ${picture.i + 1}: a picture with no marks`);

      const garbled = copy(nb);
      const table = firstTable(garbled)!;
      expect(table).toBeDefined();
      const md = joinText(table.data!['text/markdown'] as string);
      table.data!['text/markdown'] = md.replace(/^\| ([^|\n]+) \|/, '| $1 | a|b |'); // one more header cell
      expect(readerProblems(garbled).join('\n')).toMatch(/header has \d+ columns, the delimiter row \d+/);

      const inSight = copy(nb);
      const withKeys = inSight.cells.find((c) => Array.isArray(c.metadata[KEYS_METADATA]))!;
      withKeys.outputs!.push({ output_type: 'stream', name: 'stdout', text: `${(withKeys.metadata[KEYS_METADATA] as string[])[0]}\n` });
      expect(readerProblems(inSight).join('\n')).toContain('a key line in the visible output: ◆');

      const unnumbered = copy(nb);
      for (const c of unnumbered.cells) if (c.cell_type === 'code') c.execution_count = null;
      expect(readerProblems(unnumbered).join('\n')).toContain('code cells without an execution count (the prompt reads In [ ])');

      const long = copy(nb);
      const code = long.cells.find((c) => c.cell_type === 'code')!;
      code.source = `${joinText(code.source)}\nconst tooLong = ${JSON.stringify('x'.repeat(120))};`;
      expect(readerProblems(long).join('\n')).toMatch(/line \d+: 1\d\d columns \(at most 100\)/);

      const repeated = copy(nb);
      // a second heading with the number of the first numbered one (or two new ones)
      const numbered = repeated.cells.map((c) => (c.cell_type === 'markdown' ? /^##+ (\(?[0-9a-z]{1,3}[.)]) /m.exec(joinText(c.source)) : null)).find((m) => m);
      const heading = (n: string) => ({ cell_type: 'markdown' as const, metadata: {}, source: `## ${n} Again\n` });
      repeated.cells.push(...(numbered ? [heading(numbered[1]!)] : [heading('1.'), heading('1.')]));
      expect(readerProblems(repeated).join('\n')).toContain('repeats');
    });
  });
});
