/**
 * Just enough of the Jupyter notebook format (nbformat 4) to check executed notebooks as a reader sees
 * them: the outputs of code cells, their stdout text, error and stderr outputs, the pictures and the
 * tables, the code lines and the prompts' execution counts; and the key numbers kept in cell metadata.
 */
import { readFileSync } from 'node:fs';
import { KEY_MARK, KEYS_METADATA, splitKeyLines } from '../../notebooks/lib/keys.js';
import { malformedTables } from '../../notebooks/lib/markdown.js';
import { decodePng, markPixels } from './png.js';

type MultilineString = string | string[];

export interface Output {
  output_type: 'stream' | 'display_data' | 'execute_result' | 'error';
  name?: 'stdout' | 'stderr';
  text?: MultilineString;
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
}

export interface Cell {
  cell_type: 'code' | 'markdown' | 'raw';
  source: MultilineString;
  metadata: Record<string, unknown>;
  outputs?: Output[];
  execution_count?: number | null;
}

export interface Notebook {
  cells: Cell[];
  metadata: { kernelspec?: { name?: string; language?: string } } & Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

export const joinText = (s: MultilineString | undefined): string => (Array.isArray(s) ? s.join('') : (s ?? ''));

/** Reads and minimally validates a notebook file; errors name the file. */
export function readNotebook(file: string): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(readFileSync(file, 'utf8')) as Notebook;
  } catch (e) {
    throw new Error(`${file}: not a readable notebook (${(e as Error).message})`);
  }
  if (!nb || nb.nbformat !== 4 || !Array.isArray(nb.cells)) throw new Error(`${file}: not an nbformat 4 notebook`);
  return nb;
}

const codeCells = (nb: Notebook): Cell[] => nb.cells.filter((c) => c.cell_type === 'code');

/** The key lines a cell keeps in its metadata (see notebooks/lib/keys.ts). */
const metadataKeys = (c: Cell): string[] => {
  const k = c.metadata[KEYS_METADATA];
  return Array.isArray(k) ? k.map(String) : [];
};

/**
 * Every key line of the notebook, cell after cell: those in cell metadata (a committed notebook) and
 * those still printed on stdout (a fresh run, or a '◆' line left in sight).
 */
export function keyText(nb: Notebook): string {
  return codeCells(nb).map((c) => [
    ...metadataKeys(c),
    ...(c.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stdout')
      .flatMap((o) => splitKeyLines(joinText(o.text)).keys),
  ].map((l) => `${l}\n`).join('')).join('');
}

/**
 * Moves each cell's printed key lines into its metadata, in place of what was there (an executed
 * copy carries the committed notebook's metadata, stale by construction); a stdout output left
 * empty goes.
 */
export function moveKeysToMetadata(nb: Notebook): Notebook {
  for (const c of codeCells(nb)) {
    delete c.metadata[KEYS_METADATA];
    const keys: string[] = [];
    const outputs: Output[] = [];
    for (const o of c.outputs ?? []) {
      if (o.output_type === 'stream' && o.name === 'stdout') {
        const split = splitKeyLines(joinText(o.text));
        keys.push(...split.keys);
        if (split.rest.trim() === '') continue;
        o.text = split.rest.replace(/\n{2,}$/, '\n');
      }
      outputs.push(o);
    }
    c.outputs = outputs;
    if (keys.length > 0) c.metadata[KEYS_METADATA] = keys;
  }
  return nb;
}

/** '◆' lines a reader would see in an output: key numbers belong in cell metadata. */
export function visibleKeyLines(nb: Notebook): string[] {
  return nb.cells.flatMap((c, i) => (c.outputs ?? []).flatMap((o) => {
    const text = o.output_type === 'stream' ? joinText(o.text) : joinText((o.data?.['text/markdown'] ?? o.data?.['text/plain'] ?? '') as MultilineString);
    return text.split('\n').filter((l) => l.trimStart().startsWith(KEY_MARK)).map((l) => `cell ${i + 1}: a key line in the visible output: ${l.slice(0, 120)}`);
  }));
}

/** Code cells (1-based) that ran but have no execution count: the prompt would read `In [ ]:`. */
export function cellsWithoutExecutionCount(nb: Notebook): number[] {
  return nb.cells.flatMap((c, i) => (c.cell_type === 'code' && joinText(c.source).trim() !== '' && typeof c.execution_count !== 'number' ? [i + 1] : []));
}

/** Widest code line a reader can see without scrolling (the HTML export and code-hosting pages cut it). */
export const MAX_CODE_COLUMNS = 100;

/** Code lines longer than MAX_CODE_COLUMNS characters (code points), as messages. */
export function longCodeLines(nb: Notebook): string[] {
  return nb.cells.flatMap((c, i) => (c.cell_type !== 'code' ? [] : joinText(c.source).split('\n').flatMap((l, j) => {
    const n = [...l].length;
    return n > MAX_CODE_COLUMNS ? [`cell ${i + 1} line ${j + 1}: ${n} columns (at most ${MAX_CODE_COLUMNS}): ${l.slice(0, 60)}…`] : [];
  })));
}

/** Markdown tables (in Markdown cells and Markdown outputs) whose rows do not match their header. */
export function badTables(nb: Notebook): string[] {
  return nb.cells.flatMap((c, i) => {
    const texts = c.cell_type === 'markdown' ? [joinText(c.source)]
      : (c.outputs ?? []).flatMap((o) => (o.data && 'text/markdown' in o.data ? [joinText(o.data['text/markdown'] as MultilineString)] : []));
    return texts.flatMap((t) => malformedTables(t).map((p) => `cell ${i + 1}: ${p}`));
  });
}

/** Numbered section headings (`## 3. …`, below the title) whose number an earlier heading has. */
export function repeatedSectionNumbers(nb: Notebook): string[] {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const c of nb.cells) {
    if (c.cell_type !== 'markdown') continue;
    for (const line of joinText(c.source).split('\n')) {
      const m = /^#{2,6}\s+(\(?[0-9a-z]{1,3}(?:\.\d+)*[.)])\s/.exec(line);
      if (!m) continue;
      const n = m[1]!.replace(/[.)]$/, '').replace(/^\(/, '');
      if (seen.has(n)) problems.push(`section number ${n} repeats: "${seen.get(n)}" and "${line.trim()}"`);
      else seen.set(n, line.trim());
    }
  }
  return problems;
}

/** Pictures with nothing drawn in the plot area (no coloured pixel: see png.ts), as messages. */
export function blankPictures(nb: Notebook): string[] {
  return nb.cells.flatMap((c, i) => (c.outputs ?? []).flatMap((o) => {
    const png = o.data?.['image/png'];
    if (png === undefined) return [];
    try {
      const n = markPixels(decodePng(Buffer.from(joinText(png as MultilineString), 'base64')));
      return n < MIN_MARK_PIXELS ? [`cell ${i + 1}: a picture with no marks in its plot area (${n} coloured pixels): an empty chart`] : [];
    } catch (e) {
      return [`cell ${i + 1}: a picture that does not decode: ${(e as Error).message}`];
    }
  }));
}
/** Coloured pixels a chart needs to count as drawn (one small point has about 50). */
const MIN_MARK_PIXELS = 10;

/** What a reader should never see: error outputs and stderr text, each with its cell number (1-based). */
export function problemsOf(nb: Notebook): string[] {
  const problems: string[] = [];
  nb.cells.forEach((c, i) => {
    for (const o of c.outputs ?? []) {
      if (o.output_type === 'error') problems.push(`cell ${i + 1}: error ${o.ename}: ${o.evalue}`);
      if (o.output_type === 'stream' && o.name === 'stderr') problems.push(`cell ${i + 1}: stderr: ${joinText(o.text).trim().slice(0, 500)}`);
    }
  });
  return problems;
}

/** Code cells (1-based numbers) without any output or key number: outputs that were not committed. */
export function cellsWithoutOutput(nb: Notebook): number[] {
  return nb.cells.flatMap((c, i) => (c.cell_type === 'code' && joinText(c.source).trim() !== '' && (c.outputs ?? []).length === 0 && metadataKeys(c).length === 0 ? [i + 1] : []));
}

/** Number of picture outputs (SVG or PNG). */
export function countPictures(nb: Notebook): number {
  return codeCells(nb)
    .flatMap((c) => c.outputs ?? [])
    .filter((o) => o.data && ('image/svg+xml' in o.data || 'image/png' in o.data)).length;
}

/** The first output of the notebook as text (stdout or markdown / plain text of a display). */
export function firstOutputText(nb: Notebook): string {
  const o = codeCells(nb).flatMap((c) => c.outputs ?? [])[0];
  if (!o) return '';
  if (o.output_type === 'stream') return joinText(o.text);
  const d = o.data ?? {};
  return joinText((d['text/markdown'] ?? d['text/plain'] ?? '') as MultilineString);
}

/**
 * An executed notebook (fresh from nbconvert) as a reader would see it committed: its printed key
 * lines moved into cell metadata, replacing the stale ones copied from the committed notebook, and
 * the code cells numbered in the order they ran (top to bottom, once) where the kernel gave no
 * execution count.
 */
export function asRead(nb: Notebook): Notebook {
  moveKeysToMetadata(nb);
  let count = 0;
  for (const c of nb.cells) {
    if (c.cell_type !== 'code' || joinText(c.source).trim() === '') continue;
    count++;
    if (typeof c.execution_count !== 'number') c.execution_count = count;
    for (const o of c.outputs ?? []) if (o.output_type === 'execute_result') (o as { execution_count?: number }).execution_count = c.execution_count;
  }
  return nb;
}

/**
 * The executed notebook as it is committed (see asRead), with Jupyter's per-cell timing metadata
 * dropped, so that a re-run changes the file only where an output changed.
 */
export function forCommit(nb: Notebook): string {
  asRead(nb);
  for (const c of nb.cells) {
    delete c.metadata['execution'];
    if (c.cell_type === 'code') delete c.metadata['collapsed'];
  }
  return JSON.stringify(nb, null, 1) + '\n';
}
