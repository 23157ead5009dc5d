/**
 * The explorer's script: the inspection views (views.ts) with a live data source. It loads a model
 * with the browser bundle (dist/browser/index.js, imported at run time from beside dist/explorer/),
 * builds the same `InspectReport` the CLI writes (`buildReport`, run in the page) for the typed query
 * and passages (one per line; the views detail the selected one, a table scores them all), and renders
 * it. Clicking a head in the ablation grid zeroes that head's slice of
 * `encoder.layer.<l>.attention.self.hook_out` through a hook (`patchHead`, as `runWithHooks` takes it)
 * in every run of the report, so every view shows the edited model. Optionally the dense or lexical
 * score is attributed to heads and tokens (`m3.attribute`, of the unedited model).
 *
 * Views never show numbers of other texts than the ones typed: an edit dims them (`body[data-stale]`)
 * until the run it schedules has rendered, and a failed run or load clears them and shows the error.
 * `window.explorer` exposes the model and the state to tests and the console.
 */
import type { HookFn } from '../../hooks/runner.js';
import type { ViewActions, ViewChoice } from './views.js';
import { renderReport } from './views.js';

type Bundle = typeof import('../../browser.js');
type Model = import('../../m3.js').BgeM3;

// The bundle sits at dist/browser/ beside dist/explorer/; imported by URL so it is not bundled in twice.
const bge = (await import(new URL('../browser/index.js', import.meta.url).href)) as Bundle;

/** The bundled fixture, where the explorer server (and any static host of the package root) serves it. */
const FIXTURE_URL = new URL('../../test/fixtures/sharp-m3/', import.meta.url).href;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface ExplorerState {
  m3?: Model;
  modelName: string;
  /** Ablated heads as `${layer}:${head}`. */
  ablated: Set<string>;
  /** The passage (index among the typed ones) the detailed views show. */
  selected: number;
  view?: ViewChoice;
  /** Runs finished (each rendered a report). */
  runs: number;
  /** Tensors alive after each run (to see that none leak). */
  tensors: number[];
}

const S: ExplorerState = { modelName: '', ablated: new Set(), selected: 0, runs: 0, tensors: [] };

function status(text: string, error = false): void {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', error);
}

/** Empties the views: what they show no longer belongs to the model or the texts. */
function clearViews(): void {
  $('app').replaceChildren();
  delete document.body.dataset['ready'];
}

/** Shows a failure in the page (the views are cleared, not left showing other texts' numbers). */
function fail(e: unknown): void {
  console.error(e);
  const msg = e instanceof Error ? e.message : String(e);
  clearViews();
  delete document.body.dataset['stale'];
  status(msg, true);
  document.body.dataset['error'] = msg;
}

/** The typed texts: the query and the non-empty lines of the passages box. */
function typed(): { query: string; passages: string[] } {
  const query = ($('query') as HTMLTextAreaElement).value;
  const passages = ($('passage') as HTMLTextAreaElement).value.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return { query, passages };
}

/** The hooks that ablate the chosen heads: per layer, one `patchHead` per head on its context. */
function ablationHooks(m3: Model): Record<string, HookFn[]> {
  const hooks: Record<string, HookFn[]> = {};
  for (const key of S.ablated) {
    const [layer, head] = key.split(':').map(Number) as [number, number];
    (hooks[bge.layerName(layer, 'attention.self.hook_out')] ??= []).push(bge.patchHead(head, m3.config.num_attention_heads, undefined));
  }
  return hooks;
}

/** The layers × heads grid of buttons; a click toggles the head's ablation and runs again. */
function renderAblationGrid(m3: Model): void {
  const grid = $('ablate-grid');
  grid.replaceChildren();
  for (let l = 0; l < m3.config.num_hidden_layers; l++) {
    const row = document.createElement('div');
    row.className = 'ablate-row';
    row.append(Object.assign(document.createElement('span'), { className: 'ablate-layer', textContent: `layer ${l}` }));
    for (let j = 0; j < m3.config.num_attention_heads; j++) {
      const key = `${l}:${j}`;
      const b = document.createElement('button');
      b.className = 'ablate';
      b.textContent = `h${j}`;
      b.title = `layer ${l} head ${j}: click to zero its output (encoder.layer.${l}.attention.self.hook_out, head ${j}'s slice)`;
      b.dataset['layer'] = String(l);
      b.dataset['head'] = String(j);
      b.setAttribute('aria-pressed', String(S.ablated.has(key)));
      b.onclick = () => {
        if (S.ablated.has(key)) S.ablated.delete(key);
        else S.ablated.add(key);
        b.setAttribute('aria-pressed', String(S.ablated.has(key)));
        schedule();
      };
      row.append(b);
    }
    grid.append(row);
  }
}

const actions: ViewActions = {
  selectPassage: (i) => {
    S.selected = i;
    schedule();
  },
};

/** Builds the report for the typed texts with the ablations and renders every view. */
async function run(): Promise<void> {
  const m3 = S.m3;
  if (!m3) return;
  const { query, passages } = typed();
  delete document.body.dataset['ready'];
  delete document.body.dataset['error'];
  if (query.trim() === '') throw new Error('query: the query is empty; type a query (passages are optional, one per line)');
  S.selected = Math.min(S.selected, Math.max(0, passages.length - 1));
  const score = ($('attribute') as HTMLSelectElement).value as 'off' | 'dense' | 'lexical';
  if (score !== 'off' && passages.length === 0) throw new Error(`attribution of the ${score} score: type a passage (the score is the query's against a passage)`);
  const ablated = [...S.ablated].sort();
  status(`running${ablated.length ? ` with ${ablated.length} head${ablated.length > 1 ? 's' : ''} ablated` : ''} …`);
  const t0 = performance.now();
  const report = await bge.buildReport(m3, query, passages.length === 0 ? undefined : passages, {
    modelName: S.modelName, lens: 'm3', hooks: ablationHooks(m3), selected: S.selected,
    maxLength: Math.min(512, m3.maxLength),
    ...(score === 'off' ? {} : { attribute: { score } }),
  });
  const ms = performance.now() - t0;
  S.view = await renderReport(report, S.view, actions);
  S.runs++;
  const alive = bge.tf.memory().numTensors;
  S.tensors.push(alive);
  document.body.dataset['runs'] = String(S.runs);
  document.body.dataset['ablated'] = ablated.join(' ');
  // the views show the typed texts unless they were edited while this run went (that edit scheduled the next run)
  const now = typed();
  if (now.query === query && now.passages.join('\n') === passages.join('\n')) delete document.body.dataset['stale'];
  $('app').classList.toggle('stale', document.body.dataset['stale'] === 'true');
  const cut = report.texts.filter((t) => t.fullLength > t.tokens.length).map((t) => `${t.role} truncated to ${t.tokens.length} of ${t.fullLength} tokens`);
  const cutOthers = (report.passages?.fullLengths ?? []).flatMap((n, i) => (i !== S.selected && n > report.passages!.lengths[i]! ? [`passage ${i + 1} truncated to ${report.passages!.lengths[i]} of ${n} tokens`] : []));
  status([
    `computed in the page in ${ms.toFixed(0)} ms`,
    passages.length === 0 ? 'query only: type a passage for the scores' : `${passages.length} passage${passages.length > 1 ? 's' : ''}, showing ${S.selected + 1}`,
    `ablated heads: ${ablated.length ? ablated.map((k) => `L${k.replace(':', 'H')}`).join(', ') : 'none'}`,
    ...cut, ...cutOthers,
    `${alive} tensors alive`,
  ].join(' · '));
}

// Runs are queued one after another; a run asked for while one is queued is merged into it.
let chain: Promise<void> = Promise.resolve();
let queued = false;
/** The debounce timer of an edit's run. */
let pending: ReturnType<typeof setTimeout> | undefined;
let loading: Promise<void> = Promise.resolve();

/** An edit of the texts: the views are dimmed as stale at once, and a run follows when typing pauses. */
function edited(): void {
  if (!S.m3) return;
  document.body.dataset['stale'] = 'true';
  $('app').classList.add('stale');
  clearTimeout(pending);
  pending = setTimeout(() => {
    pending = undefined;
    schedule();
  }, 300);
}

/** Resolves once no load, run or edit's run is pending (for tests). */
async function settled(): Promise<void> {
  for (;;) {
    const [c, l] = [chain, loading];
    await Promise.all([c, l]);
    if (c === chain && l === loading && pending === undefined && !queued) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function schedule(): void {
  if (queued) return;
  queued = true;
  chain = chain.then(() => {
    queued = false;
    return run();
  }).catch(fail);
}

/** Where the model comes from: the bundled fixture, a folder URL, or the picked folder's files. */
function modelSource(): { where: string | File[]; name: string } {
  const kind = ($('model-source') as HTMLSelectElement).value;
  if (kind === 'url') {
    const url = ($('model-url') as HTMLInputElement).value.trim();
    if (!url) throw new Error('model URL: type a folder URL ending in /');
    return { where: new URL(url, location.href).href, name: url };
  }
  if (kind === 'folder') {
    const files = [...(($('model-files') as HTMLInputElement).files ?? [])];
    if (files.length === 0) throw new Error('model folder: pick a folder (config.json, tokenizer.json, weights)');
    const first = (files[0] as File & { webkitRelativePath?: string }).webkitRelativePath?.split('/')[0];
    return { where: files, name: first || 'picked folder' };
  }
  return { where: FIXTURE_URL, name: 'sharp-m3 (bundled fixture)' };
}

/** What runs, as the page asked for it and as tfjs reports it: backend, matMul path, wasm threads and why fewer. */
function showRuntime(asked: string): void {
  const rt = bge.runtimeInfo();
  const el = $('runtime');
  const parts = [`backend ${rt.backend}`, `matMul: ${rt.matMul}`];
  if (rt.backend === 'wasm') {
    const t = rt.wasmThreads;
    parts.push(`${t.actual ?? t.requested} wasm thread${(t.actual ?? t.requested) === 1 ? '' : 's'}${t.fallbackReason ? ` (${t.fallbackReason})` : ''}`);
  }
  parts.push(`crossOriginIsolated ${rt.crossOriginIsolated}`);
  if (rt.backend !== asked) parts.unshift(`asked for ${asked}, running ${rt.backend}`);
  el.textContent = parts.join(' · ');
  el.classList.toggle('error', rt.backend !== asked);
  el.dataset['backend'] = rt.backend;
  el.dataset['matmul'] = rt.matMul;
}

async function load(): Promise<void> {
  const { where, name } = modelSource();
  const backend = ($('backend') as HTMLSelectElement).value as 'wasm' | 'webgpu' | 'cpu';
  delete document.body.dataset['loaded'];
  delete document.body.dataset['error'];
  clearTimeout(pending);
  pending = undefined;
  await chain; // a run still going uses the model about to be disposed
  S.m3?.dispose();
  S.m3 = undefined;
  S.ablated.clear();
  // the views, the grid and the runtime line belong to the model being replaced
  clearViews();
  $('ablate-grid').replaceChildren();
  $('runtime').textContent = '';
  delete $('runtime').dataset['backend'];
  status(`loading ${name} on ${backend} …`);
  const m3 = await bge.BgeM3.load(where, {
    backend,
    onProgress: (done, total) => status(`loading ${name}: ${(done / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`),
  });
  S.m3 = m3;
  S.modelName = name;
  S.selected = 0;
  showRuntime(backend);
  // a lost GPU device fails every later run: say so once, plainly, rather than each run's WebGPU error
  const device = (bge.tf.backend() as { device?: { lost?: Promise<{ reason: string; message: string }> } }).device;
  void device?.lost?.then((info) => {
    if (S.m3 === m3) fail(new Error(`backend 'webgpu': the GPU device was lost (${info.reason}: ${info.message}); load the model again or pick another backend`));
  });
  renderAblationGrid(m3);
  document.body.dataset['loaded'] = 'true';
  schedule();
  await chain;
}

$('load').onclick = () => {
  const button = $<HTMLButtonElement>('load');
  button.disabled = true; // one load at a time
  loading = load().catch(fail).finally(() => { button.disabled = false; });
};
for (const id of ['query', 'passage']) $(id).addEventListener('input', edited);
$('attribute').onchange = () => schedule();
$('run').onclick = () => schedule();
$('clear-ablations').onclick = () => {
  S.ablated.clear();
  document.querySelectorAll('button.ablate').forEach((b) => b.setAttribute('aria-pressed', 'false'));
  schedule();
};
$('model-source').onchange = () => {
  const kind = ($('model-source') as HTMLSelectElement).value;
  $('model-url').hidden = kind !== 'url';
  $('model-files').hidden = kind !== 'folder';
};
(window as unknown as { explorer: unknown }).explorer = { state: S, bge, load, settled, run: () => (schedule(), chain) };
document.body.dataset['started'] = 'true';
