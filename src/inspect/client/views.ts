/**
 * The inspection views: tokens and sparse weights, scores, lexical match, ColBERT alignment, attention
 * per layer and head (heatmap, head thumbnails, bertviz-style head view), sparse lens, attribution and
 * hidden-state norms, all drawn from one data shape, the `InspectReport` (src/inspect/report.ts). Two
 * data sources render through `renderReport`: the inspection page (main.ts: the report the CLI wrote
 * into the page) and the explorer (explorer.ts: a report built live in the page from a loaded model).
 * It runs in the browser and may import types only; the global `uPlot` is loaded before it.
 */
import type uPlotT from 'uplot';
import type { InspectReport, ReportText } from '../report.js';
import type { TokenWeight } from '../../explain.js';

declare const uPlot: typeof uPlotT;

type RGB = [number, number, number];

/** What the page shows now; `window.inspect.state` for tests and the console. */
interface PageState {
  report: InspectReport;
  /** Index into report.texts of the text whose attention is shown. */
  text: number;
  /** Encoder layer index (one of the stored attention.layerIds). */
  layer: number;
  /** Head index, or −1 for the mean over heads. */
  head: number;
  /** Decoded attention bytes per `${text}:${layer}`. */
  layers: Map<string, Uint8Array>;
  /** Colour attention on 0 … 1 (true) or on 0 … the view's largest probability (false). */
  absolute: boolean;
}

interface HeatmapSpec {
  rows: number;
  cols: number;
  /** Colour parameter of cell (i, j) in [0, 1]. */
  value: (i: number, j: number) => number;
  color: (t: number) => RGB;
  rowLabels: string[];
  colLabels: string[];
  tip: (i: number, j: number) => string;
  /** Cells to outline (e.g. ColBERT's max-sim matches). */
  marks?: Array<[number, number]>;
  /** Largest width and height of the cell area in CSS pixels. */
  width: number;
  height: number;
}

/** Creates an element with attributes and children. */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

/** base64 → gunzip (the browser's DecompressionStream) → bytes. */
async function gunzip64(b64: string): Promise<Uint8Array> {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Piecewise-linear colour ramp through evenly spaced stops; t in [0, 1]. */
function ramp(stops: RGB[], t: number): RGB {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const k = Math.min(stops.length - 2, Math.floor(x));
  const [a, b, f] = [stops[k]!, stops[k + 1]!, x - k];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Attention: white → blue → navy. */
function attnColor(t: number): RGB {
  return ramp([[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]], t);
}

/** ColBERT similarity, low → high: pale yellow → green → blue → navy. */
function simColor(t: number): RGB {
  return ramp([[255, 255, 217], [199, 233, 180], [65, 182, 196], [34, 94, 168], [8, 29, 88]], t);
}

/** Sparse weight relative to the largest one: white → amber → deep orange. */
function weightColor(t: number): RGB {
  return ramp([[255, 255, 255], [254, 230, 170], [253, 174, 97], [230, 85, 13]], t);
}

/** A signed value, t = 0.5 for 0: blue (negative) → white → red (positive). */
function signedColor(t: number): RGB {
  return ramp([[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]], t);
}

function css(c: RGB): string {
  return `rgb(${Math.round(c[0])},${Math.round(c[1])},${Math.round(c[2])})`;
}

/** A token as a short label: the piece without its word-start marks '▁' (a lone '▁' stays). */
function tokenLabel(t: TokenWeight): string {
  if (t.special) return t.token;
  const s = t.token.replace(/\u2581/g, ' ').trim();
  return s === '' ? '\u2581' : s;
}

function fmt(x: number, digits = 4): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

function showTip(ev: MouseEvent, text: string): void {
  const tip = document.getElementById('tip')!;
  tip.textContent = text;
  tip.style.display = 'block';
  const [w, hh] = [tip.offsetWidth, tip.offsetHeight];
  tip.style.left = `${Math.min(ev.clientX + 14, window.innerWidth - w - 8)}px`;
  tip.style.top = `${ev.clientY + 16 + hh > window.innerHeight ? ev.clientY - hh - 10 : ev.clientY + 16}px`;
}

function hideTip(): void {
  document.getElementById('tip')!.style.display = 'none';
}

/** A horizontal colour legend: a gradient bar with end labels. */
function legend(color: (t: number) => RGB, left: string, right: string, caption: string): HTMLElement {
  const stops = Array.from({ length: 11 }, (_, i) => css(color(i / 10))).join(',');
  return h('div', { class: 'legend' }, h('span', {}, left), h('span', { class: 'bar', style: `background:linear-gradient(90deg,${stops})` }), h('span', {}, right), h('span', { class: 'caption' }, caption));
}

/**
 * Draws a heatmap: one pixel per cell in an offscreen image scaled up without smoothing, token labels
 * on the axes when cells are big enough, outlined marks, and a tooltip on hover.
 */
/** Sizes a canvas to W × H CSS pixels at the device's pixel ratio; returns its cleared 2-D context. */
function sizeCanvas(canvas: HTMLCanvasElement, W: number, H: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.ceil(W * dpr);
  canvas.height = Math.ceil(H * dpr);
  canvas.style.width = `${W}px`;
  canvas.style.height = `${H}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  return ctx;
}

function drawHeatmap(canvas: HTMLCanvasElement, spec: HeatmapSpec): void {
  const { rows, cols } = spec;
  // square cells of a whole number of pixels when they fit; else each axis fills its budget (a
  // long, flat matrix such as query × passage becomes a readable band, not a one-pixel strip)
  const fit = (budget: number, n: number) => Math.min(36, budget / Math.max(n, 1));
  let [cw, ch] = [fit(spec.width, cols), fit(spec.height, rows)];
  if (Math.min(cw, ch) >= 3) cw = ch = Math.floor(Math.min(cw, ch));
  else [cw, ch] = [cw >= 2 ? Math.floor(cw) : cw, Math.min(ch >= 2 ? Math.floor(ch) : ch, 14)];
  const [rowLabelled, colLabelled] = [ch >= 9, cw >= 9];
  const probe = canvas.getContext('2d')!;
  probe.font = '11px system-ui, sans-serif';
  const widest = (ls: string[]) => Math.min(130, Math.max(16, ...ls.map((l) => probe.measureText(l).width)));
  const left = rowLabelled ? widest(spec.rowLabels) + 8 : 30;
  const top = colLabelled ? widest(spec.colLabels) + 8 : 18;
  const [W, H] = [Math.ceil(left + cols * cw + 4), Math.ceil(top + rows * ch + 4)];
  const ctx = sizeCanvas(canvas, W, H);

  const img = new ImageData(Math.max(cols, 1), Math.max(rows, 1));
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const c = spec.color(spec.value(i, j));
      const o = (i * cols + j) * 4;
      img.data[o] = c[0];
      img.data[o + 1] = c[1];
      img.data[o + 2] = c[2];
      img.data[o + 3] = 255;
    }
  }
  const off = document.createElement('canvas');
  off.width = img.width;
  off.height = img.height;
  off.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, left, top, cols * cw, rows * ch);
  ctx.strokeStyle = '#94a3b8';
  ctx.lineWidth = 1;
  ctx.strokeRect(left - 0.5, top - 0.5, cols * cw + 1, rows * ch + 1);

  ctx.fillStyle = '#334155';
  ctx.font = '11px system-ui, sans-serif';
  // labels when cells are tall / wide enough, else tick numbers (token positions) every `step` cells
  const step = (cell: number) => [1, 2, 5, 10, 20, 50, 100, 200, 500].find((s) => s * cell >= 40) ?? 1000;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  if (rowLabelled) spec.rowLabels.forEach((l, i) => ctx.fillText(l, left - 5, top + (i + 0.5) * ch, 130));
  else for (let i = 0; i < rows; i += step(ch)) ctx.fillText(String(i), left - 4, top + (i + 0.5) * ch);
  if (colLabelled) {
    ctx.save();
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'left';
    spec.colLabels.forEach((l, j) => ctx.fillText(l, -top + 5, left + (j + 0.5) * cw, 130));
    ctx.restore();
  } else {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    for (let j = 0; j < cols; j += step(cw)) ctx.fillText(String(j), left + (j + 0.5) * cw, top - 3);
  }
  if (spec.marks) {
    ctx.strokeStyle = '#dc2626';
    ctx.fillStyle = '#dc2626';
    ctx.lineWidth = Math.min(cw, ch) >= 6 ? 1.5 : 1;
    for (const [i, j] of spec.marks) {
      if (Math.min(cw, ch) >= 4) ctx.strokeRect(left + j * cw + 1, top + i * ch + 1, cw - 2, ch - 2);
      else ctx.fillRect(left + j * cw, top + i * ch, Math.max(cw, 2), ch);
    }
  }

  canvas.onmousemove = (ev) => {
    const r = canvas.getBoundingClientRect();
    const j = Math.floor((ev.clientX - r.left - left) / cw);
    const i = Math.floor((ev.clientY - r.top - top) / ch);
    if (i >= 0 && j >= 0 && i < rows && j < cols) showTip(ev, spec.tip(i, j));
    else hideTip();
  };
  canvas.onmouseleave = hideTip;
}

/** Bytes of one text's layer ([heads, T, T], byte b = 255·√p), decoded once and kept. */
async function attentionBytes(S: PageState, text: number, layer: number): Promise<Uint8Array> {
  const key = `${text}:${layer}`;
  let bytes = S.layers.get(key);
  if (!bytes) {
    const a = S.report.texts[text]!.attention;
    const k = a.layerIds.indexOf(layer);
    if (k < 0) throw new Error(`layer ${layer}'s attention is not stored in this page (stored: ${a.layerIds.join(', ')})`);
    bytes = await gunzip64(a.layers[k]!);
    if (S.layers.size >= 8) S.layers.delete(S.layers.keys().next().value!); // keep a few layers
    S.layers.set(key, bytes);
  }
  return bytes;
}

/** Probabilities [T, T] of one head (head −1: the mean over heads). */
function headProbs(bytes: Uint8Array, heads: number, T: number, head: number): Float32Array {
  const p = new Float32Array(T * T);
  const first = head < 0 ? 0 : head;
  const last = head < 0 ? heads - 1 : head;
  for (let k = first; k <= last; k++) {
    const base = k * T * T;
    for (let x = 0; x < T * T; x++) {
      const b = bytes[base + x]! / 255;
      p[x]! += b * b;
    }
  }
  if (head < 0) for (let x = 0; x < T * T; x++) p[x]! /= heads;
  return p;
}

/**
 * A side × side overview of a [T, T] map: each pixel the largest value of its block (max-pooling keeps
 * sharp attention visible when 512 tokens shrink to 72 pixels). `at(x)` reads flat index x.
 */
function pooled(at: (x: number) => number, T: number, side: number): Float32Array {
  const out = new Float32Array(side * side);
  for (let i = 0; i < T; i++) {
    const r = Math.floor((i * side) / T) * side;
    for (let j = 0; j < T; j++) {
      const o = r + Math.floor((j * side) / T);
      const v = at(i * T + j);
      if (v > out[o]!) out[o] = v;
    }
  }
  return out;
}

/** Text chips coloured by sparse weight; hover shows the token's numbers and its ColBERT match. */
function renderTokens(S: PageState, box: HTMLElement): void {
  const texts = S.report.texts;
  const maxW = Math.max(1e-9, ...texts.flatMap((t) => t.tokens.map((k) => k.weight)));
  const pair = S.report.pair;
  const chips: HTMLElement[][] = [];
  texts.forEach((t, ti) => {
    const row = h('div', { class: 'tokens', 'data-role': t.role });
    chips.push([]);
    for (const k of t.tokens) {
      const c = weightColor(k.weight / maxW);
      const label = k.special ? k.token : k.token.replace(/\u2581/g, '');
      const chip = h('span', {
        class: `tok${k.special ? ' special' : ''}${k.token.startsWith('\u2581') || k.special ? ' word' : ''}`,
        style: `background:${css(c)}`,
        'data-pos': String(k.position),
        'data-id': String(k.id),
        'data-weight': String(k.weight),
        'data-special': String(k.special),
      }, label === '' ? '\u2581' : label);
      chip.onmousemove = (ev) => {
        const lines = [`${t.role} token ${k.position}: ${JSON.stringify(k.token)}`, `id ${k.id}`, `sparse weight ${fmt(k.weight)}${k.special ? ' (special: not in the lexical weights)' : ''}`];
        const other = chips[1 - ti];
        document.querySelectorAll('.tok.linked').forEach((e) => e.classList.remove('linked'));
        if (pair && other && k.position >= 1) {
          if (ti === 0) {
            const m = pair.colbert.matches[k.position - 1];
            if (m) {
              lines.push(`ColBERT: best passage token ${m.passageIndex + 1} ${JSON.stringify(texts[1]!.tokens[m.passageIndex + 1]?.token)}, similarity ${fmt(m.similarity)}`);
              other[m.passageIndex + 1]?.classList.add('linked');
            }
          } else {
            const from = pair.colbert.matches.filter((m) => m.passageIndex + 1 === k.position);
            if (from.length > 0) lines.push(`ColBERT: best match of ${from.length} query token${from.length > 1 ? 's' : ''}`);
            for (const m of from) other[m.queryIndex + 1]?.classList.add('linked');
          }
        }
        showTip(ev, lines.join('\n'));
      };
      chip.onmouseleave = () => {
        hideTip();
        document.querySelectorAll('.tok.linked').forEach((e) => e.classList.remove('linked'));
      };
      chips[ti]!.push(chip);
      row.append(chip);
    }
    const note = t.fullLength > t.tokens.length ? ` — truncated to ${t.tokens.length} of ${t.fullLength} tokens` : '';
    box.append(h('h3', {}, `${t.role === 'query' ? 'Query' : 'Passage'} · ${t.tokens.length} tokens${note}`), row);
  });
  box.append(legend(weightColor, '0', fmt(maxW, 3), 'sparse weight relu(sparse_linear(h)) per token; hover a token for details'));
}

function renderScores(S: PageState, box: HTMLElement): void {
  const p = S.report.pair!;
  const cards: Array<[string, number, string]> = [
    ['dense', p.scores.dense, 'cosine of the normalised <s> vectors'],
    ['sparse', p.scores.sparse, 'Σ w_q·w_p over shared tokens'],
    ['ColBERT', p.scores.colbert, 'mean max-sim of query vectors'],
    ['sparse+dense', p.scores['sparse+dense'], 'weights 1, 1'],
    ['colbert+sparse+dense', p.scores['colbert+sparse+dense'], 'weights 1, 1, 1'],
  ];
  box.append(h('div', { class: 'cards' }, ...cards.map(([name, v, what]) => h('div', { class: 'card', 'data-score': name, 'data-value': String(v) },
    h('div', { class: 'name' }, name), h('div', { class: 'value' }, fmt(v)), h('div', { class: 'what' }, what)))));
}

/**
 * Every passage's scores against the query, one row each (rank by the sum of the three); the selected
 * passage is the one the other views detail; `select` (the explorer's) makes a row clickable.
 */
function renderPassages(S: PageState, box: HTMLElement, select?: (i: number) => void): void {
  const ps = S.report.passages!;
  const keys = ['dense', 'sparse', 'colbert', 'colbert+sparse+dense'] as const;
  const order = ps.scores.map((s, i) => [s['colbert+sparse+dense'], i] as const).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  const body = h('tbody', {});
  ps.texts.forEach((text, i) => {
    const cut = ps.fullLengths[i]! > ps.lengths[i]! ? ` (truncated from ${ps.fullLengths[i]})` : '';
    const row = h('tr', { 'data-passage': String(i), class: i === ps.selected ? 'selected' : '', 'aria-selected': String(i === ps.selected) },
      h('td', { class: 'num' }, String(i + 1)), h('td', { class: 'num' }, String(order.indexOf(i) + 1)),
      h('td', { class: 'passage-text', title: text }, text.length > 90 ? `${text.slice(0, 90)}…` : text),
      h('td', { class: 'num' }, `${ps.lengths[i]}${cut}`),
      ...keys.map((k) => h('td', { class: 'num', 'data-score': k, 'data-value': String(ps.scores[i]![k]) }, fmt(ps.scores[i]![k]))));
    if (select && i !== ps.selected) {
      row.classList.add('pick');
      row.title = 'show this passage in the views below';
      row.onclick = () => select(i);
    }
    body.append(row);
  });
  box.append(h('table', { class: 'data', id: 'passages-table' },
    h('thead', {}, h('tr', {}, ...['#', 'rank', 'passage', 'tokens', 'dense', 'sparse', 'ColBERT', 'all three'].map((c) => h('th', {}, c)))), body));
}

function renderLexical(S: PageState, box: HTMLElement): void {
  const lex = S.report.pair!.lexical;
  if (lex.terms.length === 0) {
    box.append(h('p', { class: 'muted' }, 'No token has a positive weight in both texts: the sparse score is 0.'));
    return;
  }
  const top = Math.max(...lex.terms.map((t) => t.contribution), 1e-12);
  const body = h('tbody', {});
  for (const t of lex.terms) {
    body.append(h('tr', {},
      h('td', { class: 'mono' }, JSON.stringify(t.token)), h('td', { class: 'num' }, String(t.id)),
      h('td', { class: 'num' }, fmt(t.queryWeight)), h('td', { class: 'num' }, fmt(t.passageWeight)),
      h('td', { class: 'num' }, fmt(t.contribution, 5)),
      h('td', {}, h('span', { class: 'hbar', style: `width:${(100 * t.contribution / top).toFixed(1)}%` })),
      h('td', { class: 'num' }, `${lex.score > 0 ? (100 * t.contribution / lex.score).toFixed(1) : '0'}%`)));
  }
  box.append(h('table', { class: 'data', id: 'lexical-table' },
    h('thead', {}, h('tr', {}, ...['token', 'id', 'w_q', 'w_p', 'w_q·w_p', '', 'share'].map((c) => h('th', {}, c)))),
    body,
    h('tfoot', {}, h('tr', {}, h('td', { colspan: '4' }, `sum over ${lex.terms.length} shared tokens = sparse score`), h('td', { class: 'num' }, fmt(lex.score, 5)), h('td', { colspan: '2' }, '')))),
  h('p', { class: 'muted' }, `${lex.queryOnly} query tokens and ${lex.passageOnly} passage tokens with a weight have no counterpart.`));
}

async function renderColbert(S: PageState, box: HTMLElement): Promise<void> {
  const c = S.report.pair!.colbert;
  const [qt, pt] = [S.report.texts[0]!.tokens, S.report.texts[1]!.tokens];
  const sim = await gunzip64(c.similarity); // byte b: similarity b / 127.5 − 1
  let [lo, hi] = [255, 0];
  for (const b of sim) [lo, hi] = [Math.min(lo, b), Math.max(hi, b)];
  const span = Math.max(1, hi - lo);
  const simOf = (b: number) => b / 127.5 - 1;
  const canvas = h('canvas', { id: 'colbert-heatmap' });
  const matches = h('tbody', {});
  for (const m of c.matches) {
    matches.append(h('tr', {},
      h('td', { class: 'num' }, String(m.queryIndex + 1)), h('td', { class: 'mono' }, tokenLabel(qt[m.queryIndex + 1]!)),
      h('td', {}, '→'),
      h('td', { class: 'num' }, String(m.passageIndex + 1)), h('td', { class: 'mono' }, tokenLabel(pt[m.passageIndex + 1]!)),
      h('td', { class: 'num' }, fmt(m.similarity)),
      h('td', {}, h('span', { class: 'hbar sim', style: `width:${Math.max(0, 100 * m.similarity).toFixed(1)}%` }))));
  }
  box.append(h('div', { class: 'row' },
    h('div', { class: 'panel fig' }, canvas, legend(simColor, fmt(simOf(lo), 2), fmt(simOf(hi), 2), 'dot product of normalised ColBERT vectors (colours span the matrix\u2019s range); red boxes: each row\u2019s maximum')),
    h('div', { class: 'panel scroll' }, h('table', { class: 'data', id: 'colbert-matches' },
      h('thead', {}, h('tr', {}, ...['q', 'query token', '', 'p', 'passage token', 'max-sim', ''].map((x) => h('th', {}, x)))),
      matches,
      h('tfoot', {}, h('tr', {}, h('td', { colspan: '5' }, `mean over ${c.matches.length} query vectors = ColBERT score`), h('td', { class: 'num' }, fmt(c.score)), h('td', {}, '')))))));
  drawHeatmap(canvas, {
    rows: c.queryRows,
    cols: c.passageRows,
    value: (i, j) => (sim[i * c.passageRows + j]! - lo) / span,
    color: simColor,
    rowLabels: qt.slice(1, c.queryRows + 1).map(tokenLabel),
    colLabels: pt.slice(1, c.passageRows + 1).map(tokenLabel),
    tip: (i, j) => `query ${i + 1} ${JSON.stringify(qt[i + 1]?.token)} · passage ${j + 1} ${JSON.stringify(pt[j + 1]?.token)}\nsimilarity ≈ ${fmt(simOf(sim[i * c.passageRows + j]!), 3)}${c.matches[i]?.passageIndex === j ? ` (row maximum ${fmt(c.matches[i]!.similarity)})` : ''}`,
    marks: c.matches.map((m) => [m.queryIndex, m.passageIndex]),
    width: 520,
    height: 480,
  });
}

/**
 * bertviz-style head view: tokens as two columns (attending → attended); a line from token i to token j
 * whose opacity grows with p / top (top: 1, or the view's largest probability). Every row's 8 strongest
 * links (4 past 128 tokens) with p ≥ 0.001 and p ≥ 0.05·top are drawn; hovering a token on the left
 * shows all of its links and shades the tokens it attends to.
 */
function drawHeadView(canvas: HTMLCanvasElement, tokens: TokenWeight[], p: Float32Array, top: number, focus: number): void {
  const T = tokens.length;
  const [rowH, colW, gap] = [17, 120, 110];
  const W = colW * 2 + gap;
  const H = T * rowH + 8;
  const ctx = sizeCanvas(canvas, W, H);
  const y = (i: number) => 4 + (i + 0.5) * rowH;
  const [x0, x1] = [colW + 4, colW + gap - 4];
  ctx.lineCap = 'round';
  // Links go into 10 buckets of strength, one path and one stroke per bucket: stroking thousands of
  // curves one by one is what makes a software-rendered canvas slow to paint for long texts.
  const buckets: Array<Array<[number, number]>> = Array.from({ length: 10 }, () => []);
  const perRow = focus >= 0 ? T : T > 128 ? 4 : 8;
  for (let i = 0; i < T; i++) {
    if (focus >= 0 && i !== focus) continue;
    const row = p.subarray(i * T, (i + 1) * T);
    const order = Array.from(row.keys()).filter((j) => row[j]! >= 1e-3 && row[j]! >= 0.05 * top).sort((a, b) => row[b]! - row[a]!).slice(0, perRow);
    for (const j of order) buckets[Math.min(9, Math.floor(10 * Math.min(1, row[j]! / top)))]!.push([i, j]);
  }
  buckets.forEach((links, b) => {
    if (links.length === 0) return;
    const a = (b + 0.5) / 10;
    ctx.strokeStyle = `rgba(33,113,181,${(focus >= 0 ? Math.max(0.15, a) : 0.9 * a ** 1.5).toFixed(3)})`;
    ctx.lineWidth = focus >= 0 ? 1 + 3 * a : 0.5 + 2 * a;
    ctx.beginPath();
    for (const [i, j] of links) {
      ctx.moveTo(x0, y(i));
      ctx.bezierCurveTo(x0 + gap / 3, y(i), x1 - gap / 3, y(j), x1, y(j));
    }
    ctx.stroke();
  });
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  const focusRow = focus >= 0 ? p.subarray(focus * T, (focus + 1) * T) : undefined;
  tokens.forEach((t, i) => {
    const label = tokenLabel(t);
    ctx.textAlign = 'right';
    ctx.fillStyle = i === focus ? '#b91c1c' : '#1e293b';
    ctx.fillText(label, colW - 2, y(i), colW - 6);
    ctx.textAlign = 'left';
    if (focusRow) {
      const a = Math.min(1, focusRow[i]! / top);
      ctx.fillStyle = `rgba(33,113,181,${(0.85 * a).toFixed(3)})`;
      ctx.fillRect(colW + gap, y(i) - rowH / 2 + 1, colW, rowH - 2);
    }
    ctx.fillStyle = '#1e293b';
    ctx.fillText(label, colW + gap + 4, y(i), colW - 6);
  });
  canvas.onmousemove = (ev) => {
    const r = canvas.getBoundingClientRect();
    const i = Math.floor((ev.clientY - r.top - 4) / rowH);
    const x = ev.clientX - r.left;
    if (i >= 0 && i < T && x < colW + gap / 2) {
      if (canvas.dataset.focus !== String(i)) {
        canvas.dataset.focus = String(i);
        drawHeadView(canvas, tokens, p, top, i);
      }
      showTip(ev, `token ${i} ${JSON.stringify(tokens[i]!.token)} attends to (top):\n${Array.from(p.subarray(i * T, (i + 1) * T).keys()).sort((a, b) => p[i * T + b]! - p[i * T + a]!).slice(0, 5).map((j) => `  ${j} ${JSON.stringify(tokens[j]!.token)}  ${fmt(p[i * T + j]!, 3)}`).join('\n')}`);
    } else if (canvas.dataset.focus !== undefined) {
      delete canvas.dataset.focus;
      hideTip();
      drawHeadView(canvas, tokens, p, top, -1);
    }
  };
  canvas.onmouseleave = () => {
    hideTip();
    if (canvas.dataset.focus !== undefined) {
      delete canvas.dataset.focus;
      drawHeadView(canvas, tokens, p, top, -1);
    }
  };
}

/** Redraws the attention section for S.text / S.layer / S.head. */
async function renderAttention(S: PageState): Promise<void> {
  const text: ReportText = S.report.texts[S.text]!;
  const { heads, length: T } = text.attention;
  const bytes = await attentionBytes(S, S.text, S.layer);
  const p = headProbs(bytes, heads, T, S.head);
  let top = 1;
  if (!S.absolute) {
    top = 1e-6;
    for (const v of p) top = Math.max(top, v);
  }
  const labels = text.tokens.map(tokenLabel);
  const headName = S.head < 0 ? 'mean of heads' : `head ${S.head}`;
  const main = document.getElementById('attn-heatmap') as HTMLCanvasElement;
  drawHeatmap(main, {
    rows: T, cols: T,
    value: (i, j) => p[i * T + j]! / top,
    color: attnColor,
    rowLabels: labels, colLabels: labels,
    tip: (i, j) => `layer ${S.layer}, ${headName}\n${i} ${JSON.stringify(text.tokens[i]!.token)} → ${j} ${JSON.stringify(text.tokens[j]!.token)}\np ≈ ${fmt(p[i * T + j]!, 4)}`,
    width: 560,
    height: 560,
  });
  main.dataset.rendered = `${S.text}:${S.layer}:${S.head}`;
  document.getElementById('attn-title')!.textContent = `${text.role} · layer ${S.layer} · ${headName} · rows attend to columns`;
  const legendBox = document.getElementById('attn-legend')!;
  legendBox.replaceChildren(legend(attnColor, '0', fmt(top, 3), `attention probability${S.absolute ? '' : ', colours stretched to this view\u2019s maximum'}`));
  drawHeadView(document.getElementById('head-view') as HTMLCanvasElement, text.tokens, p, top, -1);

  // thumbnails of every head of the layer (and their mean); a click selects one
  const grid = document.getElementById('head-grid')!;
  grid.replaceChildren();
  const side = Math.min(T, 72);
  const mean = S.head < 0 ? p : headProbs(bytes, heads, T, -1);
  for (let k = -1; k < heads; k++) {
    const base = k * T * T;
    // per-head maps straight from the bytes (p = (b / 255)²); the mean from its probabilities
    const q = k < 0 ? pooled((x) => mean[x]!, T, side) : pooled((x) => (bytes[base + x]! / 255) ** 2, T, side);
    const c = h('canvas', { class: `thumb${k === S.head ? ' on' : ''}`, 'data-head': String(k), width: String(side), height: String(side), title: k < 0 ? 'mean of heads' : `head ${k}` });
    let qTop = 1;
    if (!S.absolute) {
      qTop = 1e-6;
      for (const v of q) qTop = Math.max(qTop, v);
    }
    const img = new ImageData(side, side);
    for (let x = 0; x < side * side; x++) {
      const col = attnColor(q[x]! / qTop);
      img.data.set([col[0], col[1], col[2], 255], x * 4);
    }
    c.getContext('2d')!.putImageData(img, 0, 0);
    c.onclick = () => void selectView(S, S.text, S.layer, k);
    grid.append(h('figure', {}, c, h('figcaption', {}, k < 0 ? 'mean' : `h${k}`)));
  }
}

/** Switches the attention view and syncs the selectors. */
async function selectView(S: PageState, text: number, layer: number, head: number): Promise<void> {
  S.text = text;
  S.layer = layer;
  S.head = head;
  (document.getElementById('sel-text') as HTMLSelectElement).value = String(text);
  (document.getElementById('sel-layer') as HTMLSelectElement).value = String(layer);
  (document.getElementById('sel-head') as HTMLSelectElement).value = String(head);
  await renderAttention(S);
}

function renderNorms(S: PageState, box: HTMLElement): void {
  const L = S.report.model.layers;
  const xs = Array.from({ length: L + 1 }, (_, i) => i);
  const palette = ['#2563eb', '#ea580c'];
  const series: uPlotT.Series[] = [{ label: 'stage', show: false }];
  const data: number[][] = [xs];
  S.report.texts.forEach((t, ti) => {
    series.push({ label: `${t.role} mean ‖h‖`, stroke: palette[ti]!, width: 2, points: { size: 6 } });
    series.push({ label: `${t.role} max ‖h‖`, stroke: palette[ti]!, width: 1.5, dash: [6, 4], points: { size: 5 } });
    data.push(t.norms.mean, t.norms.max);
  });
  const el = h('div', { id: 'norm-chart' });
  box.append(el);
  const stage = (v: number) => (v === 0 ? 'emb' : `L${v - 1}`);
  new uPlot({
    width: Math.min(900, box.clientWidth - 20 || 860),
    height: 280,
    scales: { x: { time: false } },
    legend: { live: false },
    series: series.map((s, i) => (i === 0 ? { ...s, value: (_u: uPlotT, v: number | null) => (v === null ? '' : stage(v)) } : { ...s, value: (_u: uPlotT, v: number | null) => (v === null ? '' : fmt(v, 3)) })),
    axes: [
      { label: 'stage: embeddings, then encoder.layer.i.hook_out', incrs: [1], values: (_u: uPlotT, splits: number[]) => splits.map(stage) },
      { label: 'L2 norm over tokens' },
    ],
  }, data as uPlotT.AlignedData, el);
}

/** The sparse lens: per text a layers × tokens heatmap of the head's weight for each token's own id. */
function renderLens(S: PageState, box: HTMLElement): void {
  S.report.lens!.forEach((lens, ti) => {
    const max = Math.max(1e-12, ...lens.weights.flat());
    const canvas = h('canvas', { id: `lens-heatmap-${ti}` });
    box.append(
      h('h3', {}, `${S.report.texts[ti]?.role ?? 'text'}: head ${lens.head}, colour 0 … ${fmt(max, 4)}`),
      h('div', { class: 'panel fig' }, canvas, legend(weightColor, '0', fmt(max, 4), 'weight of the token\u2019s own id')),
    );
    drawHeatmap(canvas, {
      rows: lens.layers.length, cols: lens.tokens.length, width: Math.min(900, box.clientWidth - 20 || 860), height: 420,
      rowLabels: lens.layers.map((n) => n.replace('.hook_out', '')), colLabels: lens.tokens,
      value: (i, j) => Math.max(0, lens.weights[i]![j]!) / max, color: weightColor,
      tip: (i, j) => `${lens.layers[i]} · ${lens.tokens[j]}${lens.special[j] ? ' (special, dropped)' : ''}: ${fmt(lens.weights[i]![j]!)}`,
    });
  });
}

/**
 * Where the query token's lexical weight (or the pair's dense or lexical score) comes from (`m3.attribute`):
 * per text, a layers × heads heatmap and a per-layer table of the attribution-patching estimates, and a
 * row of integrated gradients per token. Each figure's numbers sit in its `data-values` (JSON) for tests.
 */
function renderAttribution(S: PageState, box: HTMLElement): void {
  const a = S.report.attribution!;
  const ig = a.integratedGradients;
  const width = Math.min(900, box.clientWidth - 20 || 860);
  const heatmap = (id: string, m: number[][], rowLabels: string[], colLabels: string[], caption: string, tip: (i: number, j: number) => string) => {
    const max = Math.max(1e-12, ...m.flat().map(Math.abs));
    const canvas = h('canvas', { id, 'data-values': JSON.stringify(m) });
    box.append(h('div', { class: 'panel fig' }, canvas, legend(signedColor, fmt(-max, 4), fmt(max, 4), caption)));
    drawHeatmap(canvas, {
      rows: m.length, cols: m[0]!.length, width, height: Math.min(420, 28 * m.length),
      rowLabels, colLabels, value: (i, j) => 0.5 + m[i]![j]! / (2 * max), color: signedColor, tip,
    });
  };
  const title = a.target
    ? `query token ${a.target.token} (position ${a.target.position}): weight ${fmt(a.value)}`
    : `${a.quantity} of the query and passage ${fmt(a.value)}`;
  box.append(h('h3', { id: 'attribution-title', 'data-value': String(a.value) }, title));
  if (a.note) box.append(h('p', { class: 'muted' }, a.note));
  box.append(h('p', { class: 'muted' }, `Integrated gradients per input token, from the text${a.sides.length > 1 ? 's' : ''} with every token <mask> (${ig.steps} steps): `
    + `they sum to ${fmt(ig.sum)} against f(x) − f(x′) = ${fmt(a.value - ig.baselineValue)} (gap ${ig.gap.toExponential(2)}).`));
  a.sides.forEach((side, s) => {
    const sfx = s === 0 ? '' : `-${s}`; // side 0 keeps the ids the single-text page has always had
    if (a.sides.length > 1) box.append(h('h3', {}, s === 0 ? 'query' : 'passage'));
    const layers = side.heads.map((_, l) => `layer ${l}`);
    heatmap(`attribution-heads${sfx}`, side.heads, layers, side.heads[0]!.map((_, j) => `head ${j}`),
      'estimated change when the head is zeroed (red: the head adds to it)',
      (i, j) => `layer ${i} head ${j}: ${fmt(side.heads[i]![j]!)}`);
    box.append(h('table', { class: 'data', id: `attribution-layers${sfx}` },
      h('tr', {}, h('th', {}, 'layer'), h('th', {}, 'attention (all heads)'), h('th', {}, 'MLP')),
      ...layers.map((name, l) => h('tr', {}, h('td', {}, name),
        h('td', { 'data-value': String(side.attention[l]) }, fmt(side.attention[l]!)), h('td', { 'data-value': String(side.mlp[l]) }, fmt(side.mlp[l]!))))));
    const tokens = S.report.texts[s]!.tokens.map(tokenLabel); // the same text and truncation as side s
    heatmap(`attribution-tokens${sfx}`, [side.tokenAttributions], ['tokens'], tokens, 'integrated gradients (red: the token adds to it)',
      (_, j) => `${side.tokens[j]}: ${fmt(side.tokenAttributions[j]!)}`);
  });
}

function section(id: string, title: string, intro: string): HTMLElement {
  const s = h('section', { id }, h('h2', {}, title));
  if (intro) s.append(h('p', { class: 'muted' }, intro));
  document.getElementById('app')!.append(s);
  return s;
}

/** Which attention view to open: the text, layer and head shown (e.g. kept from the previous report). */
export interface ViewChoice {
  text: number;
  layer: number;
  head: number;
  absolute: boolean;
}

/** What a live page can do from its views (the static page can do none of it). */
export interface ViewActions {
  /** A row of the passages table was clicked: show that passage in the detailed views. */
  selectPassage?: (index: number) => void;
}

/**
 * Renders every view of `report` into #app (emptied first) and sets `body[data-ready]` when done;
 * `window.inspect.state` is the page state. `view`: the attention view to open where the report has it.
 * Returns the choice shown, for the next call.
 */
export async function renderReport(report: InspectReport, view?: ViewChoice, actions: ViewActions = {}): Promise<ViewChoice> {
  delete document.body.dataset['ready'];
  document.getElementById('app')!.replaceChildren();
  const stored = report.texts[0]!.attention.layerIds;
  const S: PageState = { report, text: report.texts.length - 1, layer: stored[0]!, head: -1, layers: new Map(), absolute: false };
  if (view && view.text < report.texts.length && stored.includes(view.layer) && view.head < report.model.heads) Object.assign(S, view);
  (window as unknown as { inspect: unknown }).inspect = { state: S, select: (t: number, l: number, k: number) => selectView(S, t, l, k) };
  const m = report.model;
  document.getElementById('meta')!.textContent = `${m.name} · ${m.layers} layers × ${m.heads} heads · hidden ${m.hiddenSize} · backend ${m.backend} · max length ${report.maxLength} · ${report.createdAt}`;

  if (report.passages) {
    renderPassages(S, section('passages', 'Passages', `Each passage against the query (three scores, rank by their sum); the views below show passage ${report.passages.selected + 1}${actions.selectPassage ? ': click a row to show another' : ''}.`), actions.selectPassage);
  }
  if (report.pair) renderScores(S, section('scores', 'Scores', ''));
  renderTokens(S, section('tokens', 'Tokens and sparse weights', ''));
  if (report.pair) {
    renderLexical(S, section('lexical', 'Lexical match', 'The sparse score is the sum over token ids with a weight in both texts (each id\u2019s largest weight in its text) of w_q·w_p.'));
    await renderColbert(S, section('colbert', 'ColBERT alignment', 'Each query vector (tokens after <s>) takes its best passage vector; the score is the mean of those maxima.'));
  }

  const subset = stored.length < m.layers ? ` This page stores layers ${stored.join(', ')} of ${m.layers}.` : '';
  const att = section('attention', 'Attention', `encoder.layer.i.attention.self.hook_probs: row i is how token i spreads its attention over the tokens (columns). Probabilities are stored as round(255·√p): about 3 digits, and values below ~1e-5 read as 0.${subset}`);
  const opt = (v: number, label: string) => h('option', { value: String(v) }, label);
  const selText = h('select', { id: 'sel-text' }, ...report.texts.map((t, i) => opt(i, `${t.role} (${t.tokens.length} tokens)`)));
  const selLayer = h('select', { id: 'sel-layer' }, ...stored.map((i) => opt(i, `layer ${i}`)));
  const selHead = h('select', { id: 'sel-head' }, opt(-1, 'mean of heads'), ...Array.from({ length: m.heads }, (_, i) => opt(i, `head ${i}`)));
  selText.onchange = () => void selectView(S, Number(selText.value), S.layer, S.head);
  selLayer.onchange = () => void selectView(S, S.text, Number(selLayer.value), S.head);
  selHead.onchange = () => void selectView(S, S.text, S.layer, Number(selHead.value));
  const absolute = h('input', { type: 'checkbox', id: 'sel-absolute' });
  absolute.checked = S.absolute;
  absolute.onchange = () => {
    S.absolute = absolute.checked;
    void renderAttention(S);
  };
  att.append(
    h('div', { class: 'controls' }, h('label', {}, 'text ', selText), h('label', {}, 'layer ', selLayer), h('label', {}, 'head ', selHead), h('label', {}, absolute, ' colour scale 0 … 1 (else 0 … the view\u2019s max)')),
    h('div', { id: 'head-grid' }),
    h('h3', { id: 'attn-title' }),
    h('div', { class: 'row' },
      h('div', { class: 'panel fig' }, h('canvas', { id: 'attn-heatmap' }), h('div', { id: 'attn-legend' })),
      h('div', { class: 'panel' }, h('div', { class: 'caption' }, 'head view: hover a token on the left'), h('div', { class: 'scroll tall' }, h('canvas', { id: 'head-view' })))),
  );
  await selectView(S, S.text, S.layer, S.head);

  if (report.lens) {
    renderLens(S, section('lens', 'Sparse lens', 'The sparse head applied to every hidden state (embeddings, then each encoder.layer.i.hook_out) instead of the last one only: at which layer do the lexical weights appear? The last row is the head as the model runs it.'));
  }
  if (report.attribution) {
    renderAttribution(S, section('attribution', report.attribution.target ? 'Where the lexical weight comes from' : `Where the ${report.attribution.quantity} comes from`, 'Attribution patching: for each attention head and MLP, activation × gradient of the token\u2019s weight, a first-order estimate of what zeroing it would cost (BGE-M3 is post-LayerNorm, so the weight is no sum of per-layer terms). Real patching can differ where the model bends; see m3.attribute and patchHeads.'));
  }
  renderNorms(S, section('norms', 'Hidden-state norms per layer', 'Mean and max over tokens of the L2 norm of embeddings.hook_out and each encoder.layer.i.hook_out.'));
  document.body.dataset.ready = 'true';
  return { text: S.text, layer: S.layer, head: S.head, absolute: S.absolute };
}
