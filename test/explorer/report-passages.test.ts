/**
 * The report the explorer builds for several passages (`buildReport` given a list) and for a score's
 * attribution, in Node: the table's scores are `computeScore`'s, the detailed passage is the selected
 * one (its pair equals the one-passage report), the attribution is `m3.attribute`'s over the pair, and
 * bad options are refused with an error naming them. The page side is test/explorer/explorer.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BgeM3 } from '../../src/m3.js';
import { attribute } from '../../src/attribution/attribute.js';
import { buildReport } from '../../src/inspect/report.js';
import { checkpointDir } from '../helpers/fixtures.js';

const QUERY = 'What is BGE M3?';
const PASSAGES = ['BGE M3 is an embedding model supporting dense retrieval.', 'BM25 ranks documents.', 'Paris is the capital of France, and a large city on the Seine.'];

describe('buildReport with several passages (sharp-m3)', () => {
  let m3: BgeM3;
  beforeAll(async () => { m3 = await BgeM3.load(checkpointDir('sharp-m3')); });
  afterAll(() => m3.dispose());

  it('scores every passage as computeScore, details the selected one, and leaks no tensor', async () => {
    const before = tf.memory().numTensors;
    const r = await buildReport(m3, QUERY, PASSAGES, { selected: 2, maxLength: 512 });
    expect(tf.memory().numTensors).toBe(before);
    const ref = await m3.computeScore(PASSAGES.map((p) => [QUERY, p] as [string, string]), { maxPassageLength: 512 });
    const err = Math.max(...r.passages!.scores.flatMap((s, i) => (['dense', 'sparse', 'colbert', 'colbert+sparse+dense'] as const).map((k) => Math.abs(s[k] - ref[k][i]!))));
    console.log(`report passages: scores vs computeScore: max abs error ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-5);
    expect(r.passages!.selected).toBe(2);
    expect(r.passages!.lengths).toEqual(m3.tokenize(PASSAGES, 512).map((ids) => ids.length));
    expect(r.texts[1]!.text).toBe(PASSAGES[2]);
    const one = await buildReport(m3, QUERY, PASSAGES[2]!, { maxLength: 512 });
    expect(one.passages).toBeUndefined();
    expect(r.pair!.scores).toEqual(one.pair!.scores);
    expect(r.passages!.scores[2]).toEqual(one.pair!.scores);
  });

  it('attributes the dense score over the query and the selected passage as m3.attribute', async () => {
    const r = await buildReport(m3, QUERY, PASSAGES, { selected: 1, attribute: { score: 'dense' }, maxLength: 512 });
    const ref = await attribute(m3, [QUERY, PASSAGES[1]!], { target: 'dense', maxLength: 512 });
    expect(r.attribution!.sides.length).toBe(2);
    expect(r.attribution!.value).toBe(ref.value);
    expect(r.attribution!.sides.map((s) => s.heads)).toEqual(ref.sides.map((s) => s.heads));
    expect(Math.abs(r.attribution!.value - r.pair!.scores.dense)).toBeLessThanOrEqual(1e-5);
  });

  it('refuses bad options, naming them', async () => {
    await expect(buildReport(m3, QUERY, PASSAGES, { selected: 3 })).rejects.toThrow(/selected must be the index of a passage in \[0, 2\], got 3/);
    await expect(buildReport(m3, QUERY, [], {})).rejects.toThrow(/passage must be a string or a non-empty list/);
    await expect(buildReport(m3, QUERY, ['a', 7 as unknown as string])).rejects.toThrow(/passage 1 must be a string, got number/);
    await expect(buildReport(m3, QUERY, undefined, { attribute: { score: 'dense' } })).rejects.toThrow(/the dense score needs a passage/);
    await expect(buildReport(m3, QUERY, PASSAGES[0], { attribute: { score: 'colbert' as 'dense' } })).rejects.toThrow(/attribute.score must be 'dense' or 'lexical', got "colbert"/);
  });
});
