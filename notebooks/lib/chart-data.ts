/**
 * Refuses Vega-Lite specs that would render blank: no data, a quantitative field with no finite
 * value, or a log scale over a field with a value ≤ 0 (Vega drops such a mark, or the whole scale
 * when its domain reaches 0: the picture shows axes and nothing else). Pure, so the tests run it
 * without a kernel; `chart()` in show.ts calls it before drawing.
 */

type Spec = Record<string, unknown>;
interface Channel { field?: string; type?: string; scale?: { type?: string } | null }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The encoding channels of a spec and of every view nested in it (layer, concat, facet, spec). */
function channels(spec: Spec): Channel[] {
  const out: Channel[] = [];
  const enc = spec['encoding'];
  if (isObject(enc)) for (const c of Object.values(enc)) if (isObject(c)) out.push(c as Channel);
  for (const k of ['layer', 'hconcat', 'vconcat', 'concat']) {
    const views = spec[k];
    if (Array.isArray(views)) for (const v of views) if (isObject(v)) out.push(...channels(v));
  }
  if (isObject(spec['spec'])) out.push(...channels(spec['spec']));
  return out;
}

/** Throws a message naming the chart (its title) and the field when the spec would render blank. */
export function checkChartData(spec: Spec): void {
  const title = isObject(spec['title']) ? String(spec['title']['text']) : String(spec['title'] ?? '(untitled)');
  const data = spec['data'];
  if (!isObject(data) || !Array.isArray(data['values'])) throw new Error(`chart "${title}": give the data inline as data.values (the check cannot see other data)`);
  const values = data['values'] as Array<Record<string, unknown>>;
  if (values.length === 0) throw new Error(`chart "${title}": no data (data.values is empty): the picture would be blank`);
  for (const c of channels(spec)) {
    if (!c.field || c.type !== 'quantitative') continue;
    const field = c.field;
    const nums = values.map((r) => r[field]).filter((v) => v !== undefined && v !== null);
    const finite = nums.filter((v) => typeof v === 'number' && Number.isFinite(v)) as number[];
    if (finite.length === 0) throw new Error(`chart "${title}": field "${field}" has no finite value (${nums.length === 0 ? 'missing' : 'all NaN or infinite'}): nothing would be drawn`);
    if (c.scale?.type === 'log') {
      const bad = finite.filter((v) => v <= 0);
      if (bad.length > 0) throw new Error(`chart "${title}": field "${field}" is on a log scale but ${bad.length} of its values are ≤ 0 (e.g. ${bad[0]}): a log scale cannot draw them (use a linear scale, or plot something positive)`);
    }
  }
}
