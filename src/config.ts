/**
 * The model config, read straight from a snapshot's `config.json` (Hugging Face `XLMRobertaConfig`).
 * Field names are the file's own; every field the forward pass uses is validated, and the error
 * names the file and the field.
 */
import { readTextFile } from './host/files.js';

export interface XLMRobertaConfig {
  readonly model_type: 'xlm-roberta';
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly intermediate_size: number;
  readonly hidden_act: 'gelu';
  readonly max_position_embeddings: number;
  readonly type_vocab_size: number;
  readonly layer_norm_eps: number;
  readonly pad_token_id: number;
  readonly position_embedding_type: 'absolute';
}

export class ConfigError extends Error {
  constructor(readonly file: string, readonly field: string, message: string) {
    super(`${file}: field '${field}' ${message}`);
    this.name = 'ConfigError';
  }
}

/** Hugging Face defaults for fields a config.json may omit (XLMRobertaConfig's own defaults). */
const DEFAULTS = {
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  pad_token_id: 1,
  position_embedding_type: 'absolute',
  hidden_act: 'gelu',
} as const;

export function parseConfig(raw: unknown, file = 'config.json'): XLMRobertaConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, '(root)', 'must be a JSON object');
  }
  const obj = raw as Record<string, unknown>;
  const field = <T>(name: string, fallback?: T): unknown => (name in obj ? obj[name] : fallback);
  const int = (name: string, min: number, fallback?: number): number => {
    const v = field(name, fallback);
    if (v === undefined) throw new ConfigError(file, name, 'is missing');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new ConfigError(file, name, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  };

  const modelType = field('model_type');
  if (modelType !== 'xlm-roberta') {
    throw new ConfigError(file, 'model_type', `must be "xlm-roberta" (the BGE-M3 encoder), got ${JSON.stringify(modelType)}`);
  }
  const act = field('hidden_act', DEFAULTS.hidden_act);
  if (act !== 'gelu') {
    throw new ConfigError(file, 'hidden_act', `must be "gelu" (exact erf GELU, as in BGE-M3), got ${JSON.stringify(act)}`);
  }
  const pet = field('position_embedding_type', DEFAULTS.position_embedding_type);
  if (pet !== 'absolute') {
    throw new ConfigError(file, 'position_embedding_type', `must be "absolute", got ${JSON.stringify(pet)}`);
  }
  const eps = field('layer_norm_eps', DEFAULTS.layer_norm_eps);
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) {
    throw new ConfigError(file, 'layer_norm_eps', `must be a positive number, got ${JSON.stringify(eps)}`);
  }

  const hidden = int('hidden_size', 1);
  const heads = int('num_attention_heads', 1);
  if (hidden % heads !== 0) {
    throw new ConfigError(file, 'num_attention_heads', `(${heads}) must divide hidden_size (${hidden})`);
  }
  const vocab = int('vocab_size', 1);
  const pad = int('pad_token_id', 0, DEFAULTS.pad_token_id);
  if (pad >= vocab) throw new ConfigError(file, 'pad_token_id', `(${pad}) must be < vocab_size (${vocab})`);
  const maxPos = int('max_position_embeddings', pad + 2);

  return {
    model_type: 'xlm-roberta',
    vocab_size: vocab,
    hidden_size: hidden,
    num_hidden_layers: int('num_hidden_layers', 1),
    num_attention_heads: heads,
    intermediate_size: int('intermediate_size', 1),
    hidden_act: 'gelu',
    max_position_embeddings: maxPos,
    type_vocab_size: int('type_vocab_size', 1, DEFAULTS.type_vocab_size),
    layer_norm_eps: eps,
    pad_token_id: pad,
    position_embedding_type: 'absolute',
  };
}

/** Reads and validates a config.json: the file at `path`, or what `read` returns (a URL's, a picked file's) named `path`. */
export async function loadConfig(path: string, read: () => Promise<string> = () => readTextFile(path)): Promise<XLMRobertaConfig> {
  let text: string;
  try {
    text = await read();
  } catch (e) {
    if ((e as Error).message?.startsWith(`${path}: `)) throw e; // already told, naming the file (a URL's HTTP or HTML answer)
    throw new ConfigError(path, '(file)', `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, '(root)', `is not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw, path);
}

/**
 * Longest input (tokens incl. <s> and </s>) the position table allows: positions run from
 * pad_token_id + 1 to max_position_embeddings − 1 (8192 for BGE-M3's 8194 rows).
 */
export const maxInputTokens = (c: XLMRobertaConfig): number => c.max_position_embeddings - c.pad_token_id - 1;
