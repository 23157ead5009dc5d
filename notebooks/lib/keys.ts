/**
 * Key numbers: the values `npm run notebooks:check` re-computes and compares with the committed
 * notebook. They are plumbing, not lesson: a reader never sees them.
 *
 * Under the check (BGE_M3_NOTEBOOK_KEYS=1 in the kernel's environment) `key()` prints a line of its own
 * starting with '◆'; anywhere else it prints nothing. When the check writes an executed notebook
 * (`--update`), it moves each cell's '◆' lines out of the visible output into the cell's metadata
 * (`metadata.bge_m3_keys`, the same lines), where the next run's are compared with them.
 *
 *   ◆ <name> = <value>  (± <tolerance>)     a number, compared within the tolerance written here
 *   ◆ <name> = <text>  (exact)              a string, compared as it is
 *
 * This file is shared by the notebooks (which print the lines) and the check (which parses them), so
 * the format has one definition.
 */

export const KEY_MARK = '◆';
/** The environment variable that makes `key()` print (set by scripts/notebooks/kernel.ts). */
export const KEYS_ENV = 'BGE_M3_NOTEBOOK_KEYS';
/** The cell metadata field the committed key lines live in. */
export const KEYS_METADATA = 'bge_m3_keys';

export type KeyValue = { name: string; value: number; tolerance: number } | { name: string; text: string };

/** The line for one key number: 6 significant digits leave the tolerance room to mean something. */
export function formatKey(name: string, value: number | string, tolerance?: number): string {
  if (/[=\n]/.test(name)) throw new Error(`key name ${JSON.stringify(name)} may not contain '=' or a newline`);
  if (typeof value === 'string') {
    if (value.includes('\n')) throw new Error(`key ${name}: text values are one line`);
    return `${KEY_MARK} ${name} = ${value}  (exact)`;
  }
  if (!Number.isFinite(value)) throw new Error(`key ${name}: ${value} is not a finite number`);
  if (tolerance === undefined || !(tolerance >= 0)) throw new Error(`key ${name}: a number needs a tolerance ≥ 0`);
  const small = value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6);
  return `${KEY_MARK} ${name} = ${value === 0 ? '0' : small ? value.toExponential(5) : value.toPrecision(6)}  (± ${Number(tolerance.toPrecision(3))})`;
}

/** Records a key number (see the top of this file); the value is checked even when nothing prints. */
export function key(name: string, value: number | string, tolerance?: number): void {
  const line = formatKey(name, value, tolerance);
  if (process.env[KEYS_ENV] === '1') console.log(line);
}

/** A stdout text split into its key lines and the rest (what a reader sees). */
export function splitKeyLines(text: string): { keys: string[]; rest: string } {
  const keys: string[] = [];
  const rest: string[] = [];
  for (const line of text.split('\n')) (line.startsWith(KEY_MARK) ? keys : rest).push(line);
  return { keys, rest: rest.join('\n') };
}

const LINE = new RegExp(`^${KEY_MARK} (.+?) = (.*)  \\((exact|± (\\S+))\\)$`);

/** The key numbers in a text (a notebook's stdout), in order; a marked line that does not parse throws. */
export function parseKeys(text: string): KeyValue[] {
  const out: KeyValue[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(KEY_MARK)) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`malformed key line: ${JSON.stringify(line)}`);
    const [, name, raw, kind, tol] = m as unknown as [string, string, string, string, string | undefined];
    if (kind === 'exact') {
      out.push({ name, text: raw });
    } else {
      const value = Number(raw);
      const tolerance = Number(tol);
      if (!Number.isFinite(value) || !Number.isFinite(tolerance)) throw new Error(`malformed key line: ${JSON.stringify(line)}`);
      out.push({ name, value, tolerance });
    }
  }
  return out;
}

/**
 * Compares the key numbers of a fresh run with the committed ones: the same names in the same order,
 * texts equal, numbers within the committed tolerance. Returns one message per difference.
 */
export function compareKeys(committed: KeyValue[], fresh: KeyValue[]): string[] {
  const problems: string[] = [];
  const freshByName = new Map(fresh.map((k) => [k.name, k]));
  const committedNames = new Set(committed.map((k) => k.name));
  if (freshByName.size !== fresh.length) problems.push('a key name is printed twice in the fresh run');
  for (const c of committed) {
    const f = freshByName.get(c.name);
    if (!f) {
      problems.push(`${c.name}: in the committed outputs, not printed by the fresh run`);
    } else if ('text' in c) {
      if (!('text' in f) || f.text !== c.text) problems.push(`${c.name}: committed ${JSON.stringify(c.text)}, now ${'text' in f ? JSON.stringify(f.text) : f.value}`);
    } else if (!('value' in f)) {
      problems.push(`${c.name}: committed a number, now the text ${JSON.stringify(f.text)}`);
    } else if (!(Math.abs(f.value - c.value) <= c.tolerance)) {
      problems.push(`${c.name}: committed ${c.value}, now ${f.value} (|Δ| ${Math.abs(f.value - c.value).toExponential(2)} > ± ${c.tolerance})`);
    }
  }
  for (const f of fresh) if (!committedNames.has(f.name)) problems.push(`${f.name}: printed by the fresh run, not in the committed outputs (re-run with --update)`);
  return problems;
}
