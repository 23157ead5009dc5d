/** Tables and charts for the notebooks: Markdown tables, and Vega-Lite charts rendered in Node. */
import { Resvg } from '@resvg/resvg-js';
import * as tslab from 'tslab';

// tslab runs cells in a vm context where `import()` is not available, and vega / vega-lite are ES
// modules with top-level await (so `require` cannot load them): a small CommonJS file imports them.
const { importEsm } = require('./esm.cjs') as { importEsm: (specifier: string) => Promise<any> };

/** A value as Markdown table text: numbers to 4 significant digits, text in a code span. */
function cell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toPrecision(4);
  const s = String(v).replace(/\|/g, '\\|').replace(/\n/g, '⏎');
  return s === '' ? '' : s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``;
}

/** Shows rows as a Markdown table; `text` columns are shown as plain text instead of code. */
export function table(rows: Array<Record<string, unknown>>, opts: { text?: string[] } = {}): void {
  if (rows.length === 0) {
    tslab.display.markdown('*(no rows)*');
    return;
  }
  const cols = Object.keys(rows[0]!);
  const plain = new Set(opts.text ?? []);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  tslab.display.markdown([
    line(cols),
    line(cols.map(() => '---')),
    ...rows.map((r) => line(cols.map((c) => (plain.has(c) ? String(r[c]).replace(/\|/g, '\\|') : cell(r[c]))))),
  ].join('\n'));
}

/**
 * Renders a Vega-Lite spec and shows it as a PNG. Vega draws SVG in Node without a canvas; the SVG is
 * then rasterised with resvg, because notebook viewers sanitise inline SVG (nbconvert's HTML export
 * empties it) while every viewer shows a PNG.
 */
export async function chart(spec: Record<string, unknown>): Promise<void> {
  const vl = await importEsm('vega-lite');
  const vega = await importEsm('vega');
  const full = { background: 'white', config: { font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', view: { stroke: '#ccc' } }, ...spec };
  const view = new vega.View(vega.parse(vl.compile(full).spec), { renderer: 'none' });
  const svg: string = await view.toSVG();
  view.finalize();
  tslab.display.png(new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng());
}

/** A heatmap of a matrix (rows × columns) with labels; labels must be unique (prefix positions). */
export async function heatmap(
  m: ArrayLike<number>[], rows: string[], cols: string[],
  opts: { title: string; x: string; y: string; color?: string; scheme?: string; domainMid?: number },
): Promise<void> {
  const values = m.flatMap((r, i) => Array.from(r, (v, j) => ({ row: rows[i], col: cols[j], v })));
  await chart({
    title: opts.title, data: { values }, mark: 'rect', width: Math.min(520, 22 * cols.length), height: Math.min(520, 22 * rows.length),
    encoding: {
      x: { field: 'col', type: 'ordinal', sort: cols, title: opts.x, axis: cols.length > 60 ? { labels: false, ticks: false } : {} },
      y: { field: 'row', type: 'ordinal', sort: rows, title: opts.y, axis: rows.length > 60 ? { labels: false, ticks: false } : {} },
      color: { field: 'v', type: 'quantitative', title: opts.color ?? 'value',
        scale: opts.domainMid === undefined ? { scheme: opts.scheme ?? 'viridis' } : { scheme: opts.scheme ?? 'redblue', domainMid: opts.domainMid, reverse: true } },
      tooltip: [{ field: 'row' }, { field: 'col' }, { field: 'v', format: '.4f' }],
    },
  });
}

/** Labels for token positions that stay unique when a token repeats: "3 ▁the". */
export const positionLabels = (tokens: string[]): string[] => tokens.map((t, i) => `${i} ${t}`);
