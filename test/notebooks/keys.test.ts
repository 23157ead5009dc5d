// The key-number format the notebooks print and the check compares: it must catch a changed number.
import { describe, expect, it, vi } from 'vitest';
import { compareKeys, formatKey, key, KEYS_ENV, parseKeys, splitKeyLines } from '../../notebooks/lib/keys.js';

describe('key numbers', () => {
  it('round-trip through a notebook stdout with other text around them', () => {
    const out = ['hello', formatKey('max |Δ| embeddings.hook_out', 4.76837e-7, 1e-5), 'x = 3', formatKey('tokens', '<s> ▁M il </s>'), formatKey('zero', 0, 1e-6)].join('\n');
    expect(parseKeys(out)).toEqual([
      { name: 'max |Δ| embeddings.hook_out', value: 4.76837e-7, tolerance: 1e-5 },
      { name: 'tokens', text: '<s> ▁M il </s>' },
      { name: 'zero', value: 0, tolerance: 1e-6 },
    ]);
  });

  it('accept numbers within the committed tolerance and report everything else', () => {
    const committed = parseKeys([formatKey('a', 1.0, 1e-4), formatKey('b', 'x y'), formatKey('c', 2, 0.5)].join('\n'));
    expect(compareKeys(committed, parseKeys([formatKey('a', 1.00005, 1e-4), formatKey('b', 'x y'), formatKey('c', 2.4, 0.5)].join('\n')))).toEqual([]);
    const problems = compareKeys(committed, parseKeys([formatKey('a', 1.0002, 1e-4), formatKey('b', 'x z'), formatKey('d', 1, 1)].join('\n')));
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/^a: committed 1, now 1\.0002/);
    expect(problems[1]).toMatch(/^b: committed "x y", now "x z"/);
    expect(problems[2]).toMatch(/^c: in the committed outputs, not printed/);
    expect(problems[3]).toMatch(/^d: printed by the fresh run, not in the committed/);
  });

  it('compare with the committed tolerance, not the fresh one', () => {
    const committed = parseKeys(formatKey('a', 1, 1e-6));
    expect(compareKeys(committed, parseKeys(formatKey('a', 1.1, 1)))).toHaveLength(1);
  });

  it('refuse what cannot be compared', () => {
    expect(() => formatKey('a', Number.NaN, 1)).toThrow(/not a finite number/);
    expect(() => formatKey('a', 1)).toThrow(/needs a tolerance/);
    expect(() => formatKey('a = b', 1, 1)).toThrow(/may not contain/);
    expect(() => formatKey('a', 'two\nlines')).toThrow(/one line/);
    expect(() => parseKeys('◆ broken line')).toThrow(/malformed key line/);
    expect(() => parseKeys('◆ a = 1  (± x)')).toThrow(/malformed key line/);
  });

  it('print only under the check, where they are moved out of sight; a reader never sees them', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const before = process.env[KEYS_ENV];
    try {
      delete process.env[KEYS_ENV];
      key('a', 1, 0.1);
      expect(log).not.toHaveBeenCalled();
      expect(() => key('a', Number.NaN, 0.1)).toThrow(/not a finite number/); // checked even when silent
      process.env[KEYS_ENV] = '1';
      key('a', 1, 0.1);
      expect(log).toHaveBeenCalledWith('◆ a = 1.00000  (± 0.1)');
    } finally {
      if (before === undefined) delete process.env[KEYS_ENV];
      else process.env[KEYS_ENV] = before;
      log.mockRestore();
    }
    expect(splitKeyLines(`text\n${formatKey('a', 1, 0.1)}\nmore\n`)).toEqual({ keys: ['◆ a = 1.00000  (± 0.1)'], rest: 'text\nmore\n' });
  });
});
