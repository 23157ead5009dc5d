// The notebooks' table and chart helpers refuse what would render wrong or blank: a `|` in a header or
// cell is escaped, a log scale over values ≤ 0, an empty data set and an all-NaN field are refused.
import { describe, expect, it } from 'vitest';
import { checkChartData } from '../../notebooks/lib/chart-data.js';
import { malformedTables, markdownTable, splitRow } from '../../notebooks/lib/markdown.js';

describe('markdownTable', () => {
  it('escapes | in headers and cells, so every row has the header column count', () => {
    const rows = [
      { layer: 0, 'max |Δ lexical|': 0.302139, token: 'a|b', note: 'x | y' },
      { layer: 1, 'max |Δ lexical|': 1e-5, token: '`tick`', note: 'two\nlines' },
    ];
    const md = markdownTable(rows, { text: ['note'] });
    expect(md.split('\n')[0]).toBe('| layer | max &#124;Δ lexical&#124; | token | note |');
    expect(md).toContain('| 0 | 0.3021 | <code>a&#124;b</code> | x &#124; y |');
    expect(md).toContain('| 1 | 1.00e-5 | `` `tick` `` | two⏎lines |');
    expect(markdownTable([{ t: '<s>|</s>' }])).toContain('| <code>&lt;s&gt;&#124;&lt;/s&gt;</code> |');
    expect(malformedTables(md)).toEqual([]);
    for (const line of md.split('\n')) expect(splitRow(line)).toHaveLength(4);
  });

  it('refuses a row with a column the first row lacks (it would vanish)', () => {
    expect(() => markdownTable([{ a: 1 }, { a: 2, b: 3 }])).toThrow(/row 1 has a column "b" the first row lacks/);
  });

  it('malformedTables finds the rows that do not match the header, as the old unescaped header did', () => {
    // nbconvert splits on \| too: a backslash-escaped pipe is a garbled table there
    expect(malformedTables('| a \\| b | c |\n| --- | --- |\n| 1 | 2 |')).toHaveLength(2); // header vs delimiter, row vs header
    const garbled = ['| layer | max |Δ lexical| | min cos |', '| --- | --- | --- |', '| 0 | 0.3 | 0.9 |'].join('\n');
    expect(malformedTables(garbled)).toEqual([
      'table "| layer | max |Δ lexical| | min cos |": header has 5 columns, the delimiter row 3',
      'table "| layer | max |Δ lexical| | min cos |": row 1 has 3 cells, the header 5: | 0 | 0.3 | 0.9 |',
    ]);
    const shortRow = ['text before', '| a | b |', '|---|---|', '| 1 | 2 |', '| 3 |', '', '| c |', '|:-:|', '| 1 |'].join('\n');
    expect(malformedTables(shortRow)).toEqual(['table "| a | b |": row 2 has 1 cells, the header 2: | 3 |']);
  });
});

describe('checkChartData', () => {
  const bars = (values: Array<Record<string, unknown>>, scale?: Record<string, unknown>) => ({
    title: 'errors', data: { values }, mark: 'bar',
    encoding: { x: { field: 'stage', type: 'ordinal' }, y: { field: 'err', type: 'quantitative', ...(scale ? { scale } : {}) } },
  });

  it('accepts what draws, on linear and log scales', () => {
    expect(() => checkChartData(bars([{ stage: 'q', err: 0 }, { stage: 'k', err: 2e-7 }]))).not.toThrow();
    expect(() => checkChartData(bars([{ stage: 'q', err: 1e-7 }, { stage: 'k', err: 2e-7 }], { type: 'log' }))).not.toThrow();
  });

  it('refuses a log scale over a value ≤ 0 (notebook 01 once drew an empty chart so)', () => {
    expect(() => checkChartData(bars([{ stage: 'q', err: 0 }, { stage: 'k', err: 2e-7 }], { type: 'log' })))
      .toThrow(/chart "errors": field "err" is on a log scale but 1 of its values are ≤ 0 \(e\.g\. 0\)/);
    expect(() => checkChartData(bars([{ stage: 'q', err: -1 }], { type: 'log' }))).toThrow(/log scale/);
  });

  it('refuses an empty data set, an all-NaN field, a missing field, data it cannot see', () => {
    expect(() => checkChartData(bars([]))).toThrow(/chart "errors": no data/);
    expect(() => checkChartData(bars([{ stage: 'q', err: Number.NaN }, { stage: 'k', err: Infinity }]))).toThrow(/field "err" has no finite value \(all NaN or infinite\)/);
    expect(() => checkChartData(bars([{ stage: 'q', error: 1 }]))).toThrow(/field "err" has no finite value \(missing\)/);
    expect(() => checkChartData({ title: 't', data: { url: 'x.json' }, mark: 'bar' })).toThrow(/data\.values/);
  });

  it('looks into layers, concatenations and facets', () => {
    const layered = { title: { text: 'layered' }, data: { values: [{ a: 0, b: 1 }] }, layer: [{ mark: 'point', encoding: { y: { field: 'a', type: 'quantitative', scale: { type: 'log' } } } }] };
    expect(() => checkChartData(layered)).toThrow(/chart "layered": field "a" is on a log scale/);
    const concat = { data: { values: [{ a: Number.NaN }] }, hconcat: [{ mark: 'line', encoding: { y: { field: 'a', type: 'quantitative' } } }] };
    expect(() => checkChartData(concat)).toThrow(/field "a" has no finite value/);
  });
});
