/** bge-m3-tfjs: BGE-M3 (dense, sparse lexical weights, ColBERT) in TensorFlow.js, with every stage inspectable. */
import './tfjs-api.js'; // chained tensor methods and gradients, as the union tfjs package has them
export { BgeM3 } from './m3.js';
export type { LoadOptions, EncodeOptions, RunOptions, EncodeOutput, ScoreOptions, Inputs } from './m3.js';
export { FORMULATIONS, type Formulation } from './run-encoder.js';
export type { FastOptions } from './model/fast/ops.js';
export { ActivationCache } from './hooks/cache.js';
export { useBackend, tensorflowPackage, BACKENDS, TENSORFLOW_PACKAGES, type BackendName, type BackendOptions } from './backend.js';
export { loadConfig, parseConfig, ConfigError, type XLMRobertaConfig } from './config.js';
export { M3Tokenizer } from './tokenizer.js';
export {
  denseScore, lexicalMatchingScore, colbertScore, combineScores, scoreMatrices,
  type LexicalWeights, type ColbertVecs, type ScoreSet, type ModeWeights,
} from './scores.js';
export { allActivationNames, checkActivationName, LAYER_SITES, MODEL_SITES, type ActivationName, type LayerSite, type ModelSite } from './hooks/names.js';
export { HookRunner, type HookFn, type HookContext, type NameFilter } from './hooks/runner.js';
export { openSnapshot, openWeightFile } from './weights/snapshot.js';
export { expectedShapes } from './model/params.js'; // openSnapshot's second argument
export { resolveModel, resolveModelDir, hubCacheDir, ModelNotFoundError, type ResolvedModel, type ResolveModelOptions } from './hub/cache.js';
export { openSafetensors, writeSafetensors, SafetensorsFile } from './weights/safetensors.js';
export { openTorchCheckpoint } from './weights/torch.js';
export { convertSnapshot } from './weights/convert.js';
export { WeightFileError, type TensorSource, type DType } from './weights/types.js';
export {
  attribute, probedNames, type AttributeOptions, type Attribution, type SideAttribution, type TokenTarget, type ScoreTarget,
} from './attribution/attribute.js';
export { patchHeads, patchHead, type HeadPatching } from './attribution/patching.js';
export { spearman, pearson, topK, topKOverlap } from './attribution/rank.js';
export { explainLexicalMatch, explainColbert, explainTokenWeights, explainPair } from './explain.js';

// The sparse-head lab (docs/SPARSE-HEADS.md): head variants, their training on the frozen encoder,
// the sparse lens and BEIR-style evaluation.
export { createHead, createTrainableHead, HEAD_NAMES, TRAINABLE_HEAD_NAMES, type HeadOptions } from './lab/heads/registry.js';
export type { SparseHead, TrainableHead, Side } from './lab/heads/head.js';
export { sparseLens, formatLensTable, lensHtml, type SparseLens } from './lab/lens.js';
export { trainHead, type TrainExample, type TrainOptions, type TrainResult, type EpochStats, type StepStats, type TeacherScores } from './lab/train.js';
export { TrainingDivergedError, CheckpointError, type RunSettings } from './lab/train.js';
export { HeadWeightsError, MAX_HEAD_WEIGHT } from './weights/finite.js';
export { memoryHiddenSource, type HiddenSource, type HiddenRecord } from './lab/hidden-source.js';
export { evaluateBeir, weighTexts, EVAL_MODES, type EvalMode, type EvalOptions, type EvalResult } from './lab/evaluate.js';
export { readBeir, documentText, type BeirSet, type BeirDoc } from './lab/beir.js';
export { evaluateRun, METRIC_NAMES, type Metrics, type MetricName, type Run, type Qrels, type Hit } from './lab/metrics.js';
export { InvertedIndex, type IndexStats } from './lab/index.js';
