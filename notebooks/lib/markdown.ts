/**
 * Markdown table text, kept apart from the display so that the check and the tests can use it without
 * a kernel. Every header and cell is escaped: a `|` inside one would otherwise end the cell and shift
 * the rest of the row. GitHub splits cells on `|` even inside code spans and honours `\|`; nbconvert's
 * Markdown renderer (mistune) splits on every `|`, `\|` included. So a `|` is written as the HTML
 * entity `&#124;`, which both render as `|`, and a code cell holding one as an HTML `<code>` element
 * (a Markdown code span would show the entity as typed).
 */

const PIPE = '&#124;';

/** Escapes text for a table cell: `|` as `&#124;`, a line break as ⏎ (a cell is one line). */
export const escapeCell = (s: string): string => s.replace(/\|/g, PIPE).replace(/\r?\n/g, '⏎');

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A number as table text: integers as they are, others to 4 significant digits. */
export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(2) : v.toPrecision(4);
}

/** A value as table cell text: numbers formatted, text in a code span unless it is a `plain` column. */
function cell(v: unknown, plain: boolean): string {
  if (typeof v === 'number') return formatNumber(v);
  const text = String(v);
  if (plain || text === '') return escapeCell(text);
  if (text.includes('|')) return `<code>${escapeCell(escapeHtml(text))}</code>`;
  const s = escapeCell(text);
  // a code span holding a backtick needs a longer fence, and spaces inside it
  return s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``;
}

/**
 * The rows as a Markdown table: columns from the first row's keys, `text` columns shown as plain text
 * instead of code. Throws when a row has a key the first row lacks (it would be silently dropped).
 */
export function markdownTable(rows: Array<Record<string, unknown>>, opts: { text?: string[] } = {}): string {
  if (rows.length === 0) return '*(no rows)*';
  const cols = Object.keys(rows[0]!);
  rows.forEach((r, i) => {
    for (const k of Object.keys(r)) if (!cols.includes(k)) throw new Error(`table: row ${i} has a column ${JSON.stringify(k)} the first row lacks`);
  });
  const plain = new Set(opts.text ?? []);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(cols.map(escapeCell)),
    line(cols.map(() => '---')),
    ...rows.map((r) => line(cols.map((c) => (r[c] === undefined ? '' : cell(r[c], plain.has(c)))))),
  ].join('\n');
}

/**
 * The cells of one table row as the strictest renderer sees them: split on every `|` (nbconvert's
 * does not honour `\|`), the outer pipes dropped.
 */
export function splitRow(line: string): string[] {
  const cells = line.trim().split('|');
  if (line.trim().startsWith('|')) cells.shift();
  if (line.trim().endsWith('|')) cells.pop();
  return cells;
}

/**
 * Every table in a Markdown text whose rows do not all have its header's column count, as messages.
 * A table is a header line with a `|`, followed by a delimiter row (`---`, `:--:` …).
 */
export function malformedTables(markdown: string): string[] {
  const lines = markdown.split('\n');
  const problems: string[] = [];
  const isDelimiter = (l: string) => /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(l);
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.includes('|') || !isDelimiter(lines[i + 1]!)) continue;
    const width = splitRow(lines[i]!).length;
    const delimiter = splitRow(lines[i + 1]!).length;
    if (delimiter !== width) problems.push(`table "${lines[i]!.trim().slice(0, 80)}": header has ${width} columns, the delimiter row ${delimiter}`);
    let j = i + 2;
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j++) {
      const n = splitRow(lines[j]!).length;
      if (n !== width) problems.push(`table "${lines[i]!.trim().slice(0, 80)}": row ${j - i - 1} has ${n} cells, the header ${width}: ${lines[j]!.trim().slice(0, 120)}`);
    }
    i = j - 1;
  }
  return problems;
}
