/**
 * The sparse lens: a sparse head applied to every hidden state of one text, the embeddings
 * (`hidden_states[0]`) and each layer's output, instead of the last layer only. At which layer do
 * the lexical weights appear? One encoder pass caches `embeddings.hook_out` and every
 * `encoder.layer.<i>.hook_out`; the head's per-position weight for the position's own token id is
 * read from each. The result is plain JSON, so a page (the inspection report) can embed it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { unusedTokenIds } from '../heads/sparse.js';
import type { ActivationName } from '../hooks/names.js';
import type { HookFn } from '../hooks/runner.js';
import type { BgeM3 } from '../m3.js';
import type { TrainableHead } from './heads/head.js';
import { hiddenStateName } from './hidden.js';

export interface SparseLens {
  readonly head: string;
  readonly text: string;
  readonly inputIds: number[];
  /** Token pieces (`▁BM`, `25`, `<s>` …), one per column. */
  readonly tokens: string[];
  /** True for `<s>`, `</s>`, `<pad>`, `<unk>`: weighed here, dropped from lexical weights. */
  readonly special: boolean[];
  /** Row r is hidden_states[r]: its activation name (`embeddings.hook_out`, `encoder.layer.0.hook_out`, …). */
  readonly layers: string[];
  /** weights[r][t]: the head's weight for token t's own id, read from hidden_states[r]. */
  readonly weights: number[][];
}

/** Runs `text` once and applies `head` to hidden_states[0 … L]. The head's own `layer` is ignored. */
export async function sparseLens(
  model: BgeM3, head: TrainableHead, text: string,
  opts: { maxLength?: number; hooks?: Partial<Record<ActivationName, HookFn | HookFn[]>> } = {},
): Promise<SparseLens> {
  if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${typeof text}`);
  const L = model.config.num_hidden_layers;
  const names = Array.from({ length: L + 1 }, (_, l) => hiddenStateName(l, L));
  const [ids] = model.tokenize([text], opts.maxLength);
  const { cache } = await model.runWithCache({ inputIds: [ids!] }, { names, hooks: opts.hooks });
  try {
    const weights: number[][] = [];
    for (const name of names) {
      const w = head.tokenWeights(cache.get(name) as tf.Tensor3D, [ids!]); // [1, T]
      weights.push(Array.from(await w.data()));
      w.dispose();
    }
    const t = model.tokenizer;
    const special = unusedTokenIds(t);
    return {
      head: head.name, text, inputIds: ids!, tokens: ids!.map((id) => t.idToToken(id)),
      special: ids!.map((id) => special.has(id)), layers: names, weights,
    };
  } finally {
    cache.dispose();
  }
}

/** The lens as an aligned text table: one row per hidden state, one column per token piece. */
export function formatLensTable(lens: SparseLens, digits = 3): string {
  const rowLabel = (name: string) => (name === 'embeddings.hook_out' ? 'embeddings' : name.replace(/^encoder\.layer\.(\d+)\.hook_out$/, 'layer $1'));
  const labels = lens.layers.map(rowLabel);
  const labelWidth = Math.max('hidden state'.length, ...labels.map((l) => l.length));
  const cells = lens.weights.map((row) => row.map((w) => w.toFixed(digits)));
  // Widths count code points, so pieces such as "▁北京" line up as far as a terminal's fixed width allows.
  const width = lens.tokens.map((tok, t) => Math.max([...tok].length, ...cells.map((r) => r[t]!.length)));
  const pad = (s: string, w: number) => ' '.repeat(Math.max(0, w - [...s].length)) + s;
  const lines = [[pad('hidden state', labelWidth), ...lens.tokens.map((tok, t) => pad(tok, width[t]!))].join('  ')];
  labels.forEach((label, r) => lines.push([label.padEnd(labelWidth), ...cells[r]!.map((c, t) => pad(c, width[t]!))].join('  ')));
  return `${lines.join('\n')}\n`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A self-contained HTML page: the lens as a heatmap table (darker = heavier), the data embedded as JSON. */
export function lensHtml(lens: SparseLens): string {
  const max = Math.max(1e-12, ...lens.weights.flat());
  const head = lens.tokens.map((tok, t) => `<th class="${lens.special[t] ? 'sp' : ''}">${escapeHtml(tok)}</th>`).join('');
  const rows = lens.weights.map((row, r) => `<tr><th>${escapeHtml(lens.layers[r]!)}</th>${row.map((w) => {
    const a = Math.max(0, w) / max;
    return `<td style="background:rgba(200,40,30,${a.toFixed(3)});color:${a > 0.55 ? '#fff' : '#000'}" title="${w}">${w.toFixed(3)}</td>`;
  }).join('')}</tr>`).join('\n');
  const json = JSON.stringify(lens).replace(/</g, '\\u003c');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>sparse lens: ${escapeHtml(lens.head)}</title>
<style>body{font:13px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:3px 6px;border:1px solid #ddd;text-align:right;font-variant-numeric:tabular-nums}th.sp{color:#888}caption{text-align:left;margin-bottom:.5em}</style>
</head><body>
<h1>Sparse lens</h1>
<p>Head <b>${escapeHtml(lens.head)}</b> applied to every hidden state of the text; each cell is the weight the head gives the token's own id at that layer (special tokens, grey, are dropped from lexical weights). Colour scale: 0 to ${max.toPrecision(4)}.</p>
<p><q>${escapeHtml(lens.text)}</q></p>
<table><thead><tr><th>hidden state</th>${head}</tr></thead><tbody>
${rows}
</tbody></table>
<script type="application/json" id="lens-data">${json}</script>
</body></html>
`;
}
