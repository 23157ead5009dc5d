/**
 * Just enough of the Jupyter notebook format (nbformat 4) to check executed notebooks: the outputs of
 * code cells, their stdout text, error and stderr outputs, and the pictures.
 */
import { readFileSync } from 'node:fs';

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

/** All stdout text of the notebook, cell after cell. */
export function stdoutOf(nb: Notebook): string {
  return codeCells(nb)
    .flatMap((c) => c.outputs ?? [])
    .filter((o) => o.output_type === 'stream' && o.name === 'stdout')
    .map((o) => joinText(o.text))
    .join('');
}

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

/** Code cells (1-based numbers) without any output: outputs that were not committed. */
export function cellsWithoutOutput(nb: Notebook): number[] {
  return nb.cells.flatMap((c, i) => (c.cell_type === 'code' && joinText(c.source).trim() !== '' && (c.outputs ?? []).length === 0 ? [i + 1] : []));
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
 * The executed notebook as it is committed: Jupyter's per-cell timing metadata dropped, so that a
 * re-run changes the file only where an output changed.
 */
export function forCommit(nb: Notebook): string {
  for (const c of nb.cells) {
    delete c.metadata['execution'];
    if (c.cell_type === 'code') delete c.metadata['collapsed'];
  }
  return JSON.stringify(nb, null, 1) + '\n';
}
