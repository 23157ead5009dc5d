/**
 * The explorer's script: the inspection views (views.ts) with a live data source. It loads a model
 * with the browser bundle (dist/browser/index.js, imported at run time from beside dist/explorer/),
 * builds the same `InspectReport` the CLI writes (`buildReport`, run in the page) for the typed query
 * and passage, and renders it. Clicking a head in the ablation grid zeroes that head's slice of
 * `encoder.layer.<l>.attention.self.hook_out` through a hook (`patchHead`, as `runWithHooks` takes it)
 * in every run of the report, so every view shows the edited model.
 * `window.explorer` exposes the model and the state to tests and the console.
 */
import type { HookFn } from '../../hooks/runner.js';
import type { ViewChoice } from './views.js';
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
  view?: ViewChoice;
  /** Runs finished (each rendered a report). */
  runs: number;
  /** Tensors alive after each run (to see that none leak). */
  tensors: number[];
}

const S: ExplorerState = { modelName: '', ablated: new Set(), runs: 0, tensors: [] };

function status(text: string, error = false): void {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', error);
}

function fail(e: unknown): void {
  console.error(e);
  const msg = e instanceof Error ? e.message : String(e);
  status(msg, true);
  document.body.dataset['error'] = msg;
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

/** Builds the report for the typed texts with the ablations and renders every view. */
async function run(): Promise<void> {
  const m3 = S.m3;
  if (!m3) return;
  const query = ($('query') as HTMLTextAreaElement).value;
  const passage = ($('passage') as HTMLTextAreaElement).value;
  if (query.trim() === '') {
    status('type a query', true);
    return;
  }
  delete document.body.dataset['ready'];
  delete document.body.dataset['error'];
  const ablated = [...S.ablated].sort();
  status(`running${ablated.length ? ` with ${ablated.length} head${ablated.length > 1 ? 's' : ''} ablated` : ''} …`);
  const t0 = performance.now();
  const report = await bge.buildReport(m3, query, passage.trim() === '' ? undefined : passage, {
    modelName: S.modelName, lens: 'm3', hooks: ablationHooks(m3),
    maxLength: Math.min(512, m3.maxLength),
  });
  const ms = performance.now() - t0;
  S.view = await renderReport(report, S.view);
  S.runs++;
  const alive = bge.tf.memory().numTensors;
  S.tensors.push(alive);
  document.body.dataset['runs'] = String(S.runs);
  document.body.dataset['ablated'] = ablated.join(' ');
  status(`computed in the page in ${ms.toFixed(0)} ms · ablated heads: ${ablated.length ? ablated.map((k) => `L${k.replace(':', 'H')}`).join(', ') : 'none'} · ${alive} tensors alive`);
}

// Runs are queued one after another; a run asked for while one is queued is merged into it.
let chain: Promise<void> = Promise.resolve();
let queued = false;
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

async function load(): Promise<void> {
  const { where, name } = modelSource();
  const backend = ($('backend') as HTMLSelectElement).value as 'wasm' | 'webgpu' | 'cpu';
  delete document.body.dataset['loaded'];
  delete document.body.dataset['error'];
  await chain; // a run still going uses the model about to be disposed
  S.m3?.dispose();
  S.m3 = undefined;
  S.ablated.clear();
  status(`loading ${name} …`);
  const m3 = await bge.BgeM3.load(where, {
    backend,
    onProgress: (done, total) => status(`loading ${name}: ${(done / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`),
  });
  S.m3 = m3;
  S.modelName = name;
  const rt = bge.runtimeInfo();
  $('runtime').textContent = `${rt.backend} · matMul ${rt.matMul} · wasm threads ${rt.wasmThreads.actual ?? rt.wasmThreads.requested} · crossOriginIsolated ${rt.crossOriginIsolated}`;
  renderAblationGrid(m3);
  document.body.dataset['loaded'] = 'true';
  schedule();
  await chain;
}

$('load').onclick = () => {
  const button = $<HTMLButtonElement>('load');
  button.disabled = true; // one load at a time
  void load().catch(fail).finally(() => { button.disabled = false; });
};
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
(window as unknown as { explorer: unknown }).explorer = { state: S, bge, load, run: () => (schedule(), chain) };
document.body.dataset['started'] = 'true';
