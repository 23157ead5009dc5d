/**
 * bge-m3-tfjs in a web page: the same model, heads, scores, tokenizer, weight readers and hooks as in
 * Node, reading bytes from URLs, Blobs and Files. What only Node can do (file paths, the Hugging Face
 * cache, the CLI; the FMA kernel's pool runs on Web Workers instead of worker_threads) is swapped out by the package.json `browser` field;
 * `npm run build` also bundles this entry, with tfjs and its .wasm files, into dist/browser/.
 *
 *   import { BgeM3 } from '/node_modules/bge-m3-tfjs/dist/browser/index.js';
 *   const m3 = await BgeM3.load('https://huggingface.co/BAAI/bge-m3/resolve/main/', { backend: 'wasm' });
 *   const out = await m3.encode(['text'], { returnDense: true, returnSparse: true, returnColbert: true });
 */
import * as tf from '@tensorflow/tfjs-core';
import './tfjs-api.js';
import { kernelStatus, type KernelStatus } from './kernels/gemm.js';
import { wasmThreadsStatus } from './runtime/wasm-threads.js';

export { BgeM3 } from './m3.js';
export type { LoadOptions, EncodeOptions, RunOptions, EncodeOutput, ScoreOptions, Inputs, ModelLocation } from './m3.js';
export { FORMULATIONS, type Formulation } from './run-encoder.js';
export { ActivationCache } from './hooks/cache.js';
export { useBackend, BACKENDS, type BackendName } from './backend.js';
export { parseConfig, ConfigError, type XLMRobertaConfig } from './config.js';
export { M3Tokenizer } from './tokenizer.js';
export {
  denseScore, lexicalMatchingScore, colbertScore, combineScores, scoreMatrices,
  type LexicalWeights, type ColbertVecs, type ScoreSet, type ModeWeights,
} from './scores.js';
export { allActivationNames, checkActivationName, layerName, LAYER_SITES, MODEL_SITES, type ActivationName, type LayerSite, type ModelSite } from './hooks/names.js';
export { HookRunner, type HookFn, type HookContext, type NameFilter } from './hooks/runner.js';
export { explainLexicalMatch, explainColbert, explainTokenWeights, explainPair } from './explain.js';
export { openSnapshot, openWeightFile } from './weights/snapshot.js';
export { openSafetensors, SafetensorsFile } from './weights/safetensors.js';
export { openTorchCheckpoint } from './weights/torch.js';
export { WeightFileError, type TensorSource, type DType } from './weights/types.js';
export { blobSource, openUrlSource, HttpError, type ByteSource, type UrlSourceOptions } from './weights/source.js';
export { urlFolder, filesFolder, type ModelFolder } from './weights/folder.js';
export { cachingFetch } from './weights/url-cache.js';
export { buildReport, REPORT_FORMAT, type InspectReport, type BuildReportOptions } from './inspect/report.js';
export { patchHead } from './attribution/patching.js';
export { setWasmFolder } from './host/wasm-threads.browser.js';
export { tf };

/**
 * Which compute path runs in this page: the backend, the wasm build's threads, and the matMul path
 * (`matMul`, one line; on wasm `kernel` too: the FMA kernel with its threads, or XNNPACK and why).
 */
export function runtimeInfo(): {
  backend: string; crossOriginIsolated: boolean; wasmThreads: ReturnType<typeof wasmThreadsStatus>; matMul: string; kernel?: KernelStatus;
} {
  const wasm = tf.getBackend() === 'wasm';
  const kernel = wasm ? kernelStatus() : undefined;
  return {
    backend: tf.getBackend(),
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    wasmThreads: { ...wasmThreadsStatus() },
    matMul: kernel?.path ?? `${tf.getBackend()} backend matMul`,
    ...(kernel ? { kernel } : {}),
  };
}
