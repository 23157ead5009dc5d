/**
 * `m3-log1p`: BGE-M3's head with SPLADE's saturation, log(1 + relu(W_lex·h + b)), starting from the
 * model's own W_lex and b. The ranking of a text's tokens is unchanged (log1p is monotone); what
 * changes is how much one very heavy shared token can weigh in a match. See linear-token.ts.
 */
import type { BgeM3 } from '../../m3.js';
import { LinearTokenHead } from './linear-token.js';

export function m3Log1pHead(model: BgeM3, layer?: number): LinearTokenHead {
  return new LinearTokenHead('m3-log1p', model, 'log1p', layer);
}
