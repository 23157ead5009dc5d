/** Tables and charts for the notebooks: Markdown tables, and Vega-Lite charts rendered in Node. */
import { Resvg } from '@resvg/resvg-js';
import * as tslab from 'tslab';
import { checkChartData } from './chart-data';
import { markdownTable } from './markdown';

// tslab runs cells in a vm context where `import()` is not available, and vega / vega-lite are ES
// modules with top-level await (so `require` cannot load them): a small CommonJS file imports them.
const { importEsm } = require('./esm.cjs') as { importEsm: (specifier: string) => Promise<any> };

/**
 * Shows rows as a Markdown table (headers and cells escaped, see lib/markdown.ts); `text` columns are
 * shown as plain text instead of code.
 */
export function table(rows: Array<Record<string, unknown>>, opts: { text?: string[] } = {}): void {
  tslab.display.markdown(markdownTable(rows, opts));
}

/**
 * Renders a Vega-Lite spec and shows it as a PNG. Vega draws SVG in Node without a canvas; the SVG is
 * then rasterised with resvg, because notebook viewers sanitise inline SVG (nbconvert's HTML export
 * empties it) while every viewer shows a PNG. A spec that would draw nothing (no data, no finite
 * value, a log scale over values ≤ 0) is refused with an error naming the chart and field.
 */
export async function chart(spec: Record<string, unknown>): Promise<void> {
  checkChartData(spec);
  const vl = await importEsm('vega-lite');
  const vega = await importEsm('vega');
  const full = { background: 'white', config: { font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', view: { stroke: '#ccc' } }, ...spec };
  const view = new vega.View(vega.parse(vl.compile(full).spec), { renderer: 'none' });
  const svg: string = await view.toSVG();
  view.finalize();
  tslab.display.png(new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng());
}

/**
 * A heatmap of a matrix (rows × columns) with labels; labels must be unique (prefix positions).
 * `marks` are [row, column] cells to ring (e.g. each row's argmax); `cell` is the side of a cell in
 * pixels (default 22, shrunk so the picture stays within 520 pixels).
 */
export async function heatmap(
  m: ArrayLike<number>[], rows: string[], cols: string[],
  opts: { title: string; x: string; y: string; color?: string; scheme?: string; domainMid?: number; marks?: Array<[number, number]>; cell?: number },
): Promise<void> {
  if (m.length !== rows.length) throw new Error(`heatmap "${opts.title}": ${m.length} rows of data, ${rows.length} row labels`);
  m.forEach((r, i) => {
    if (r.length !== cols.length) throw new Error(`heatmap "${opts.title}": row ${i} has ${r.length} values, ${cols.length} column labels`);
  });
  const values = m.flatMap((r, i) => Array.from(r, (v, j) => ({ row: rows[i], col: cols[j], v })));
  const side = opts.cell ?? 22;
  const x = { field: 'col', type: 'ordinal', sort: cols, title: opts.x, axis: cols.length > 60 ? { labels: false, ticks: false } : { labelAngle: -60 } };
  const y = { field: 'row', type: 'ordinal', sort: rows, title: opts.y, axis: rows.length > 60 ? { labels: false, ticks: false } : {} };
  const rect = {
    mark: 'rect',
    encoding: {
      x, y,
      color: { field: 'v', type: 'quantitative', title: opts.color ?? 'value',
        scale: opts.domainMid === undefined ? { scheme: opts.scheme ?? 'viridis' } : { scheme: opts.scheme ?? 'redblue', domainMid: opts.domainMid, reverse: true } },
      tooltip: [{ field: 'row' }, { field: 'col' }, { field: 'v', format: '.4f' }],
    },
  };
  const marked = (opts.marks ?? []).map(([i, j]) => ({ row: rows[i], col: cols[j] }));
  await chart({
    title: opts.title, data: { values },
    width: Math.min(520, side * cols.length), height: Math.min(520, side * rows.length),
    ...(marked.length === 0 ? rect : {
      layer: [rect, { data: { values: marked }, mark: { type: 'square', filled: false, color: 'white', strokeWidth: 2, size: side * side * 0.6 }, encoding: { x, y } }],
    }),
  });
}

/** Labels for token positions that stay unique when a token repeats: "3 ▁the". */
export const positionLabels = (tokens: string[]): string[] => tokens.map((t, i) => `${i} ${t}`);
