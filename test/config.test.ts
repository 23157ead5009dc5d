import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, maxInputTokens, parseConfig } from '../src/config.js';
import { checkpointDir } from './helpers/fixtures.js';

const fixture = () => JSON.parse(readFileSync(join(checkpointDir('small-m3'), 'config.json'), 'utf8')) as Record<string, unknown>;

describe('config.json', () => {
  it('reads the fixture config with its own values', async () => {
    const raw = fixture();
    const c = await loadConfig(join(checkpointDir('small-m3'), 'config.json'));
    for (const k of ['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size',
      'max_position_embeddings', 'type_vocab_size', 'layer_norm_eps', 'pad_token_id'] as const) expect(c[k], k).toBe(raw[k]);
    expect(maxInputTokens(c)).toBe((raw.max_position_embeddings as number) - (raw.pad_token_id as number) - 1);
  });

  it('uses Hugging Face defaults for omitted optional fields', () => {
    const raw = fixture();
    delete raw.layer_norm_eps;
    delete raw.type_vocab_size;
    const c = parseConfig(raw);
    expect(c.layer_norm_eps).toBe(1e-12);
    expect(c.type_vocab_size).toBe(2);
  });

  const bad: Array<[string, (c: Record<string, unknown>) => void, RegExp]> = [
    ['unknown model_type', (c) => { c.model_type = 'bert'; }, /'model_type'.*"bert"/],
    ['tanh GELU', (c) => { c.hidden_act = 'gelu_new'; }, /'hidden_act'.*"gelu_new"/],
    ['relative positions', (c) => { c.position_embedding_type = 'relative_key'; }, /'position_embedding_type'/],
    ['heads not dividing hidden', (c) => { c.num_attention_heads = 5; }, /'num_attention_heads' \(5\) must divide hidden_size \(64\)/],
    ['missing hidden_size', (c) => { delete c.hidden_size; }, /'hidden_size' is missing/],
    ['fractional layers', (c) => { c.num_hidden_layers = 2.5; }, /'num_hidden_layers' must be an integer >= 1, got 2.5/],
    ['string size', (c) => { c.intermediate_size = '256'; }, /'intermediate_size' must be an integer/],
    ['non-positive eps', (c) => { c.layer_norm_eps = 0; }, /'layer_norm_eps' must be a positive number/],
    ['pad outside the vocabulary', (c) => { c.pad_token_id = 9000; }, /'pad_token_id' \(9000\) must be < vocab_size/],
  ];
  it.each(bad)('rejects %s, naming the file and field', (_what, edit, msg) => {
    const raw = fixture();
    edit(raw);
    expect(() => parseConfig(raw, '/snap/config.json')).toThrow(msg);
    expect(() => parseConfig(raw, '/snap/config.json')).toThrow(/^\/snap\/config\.json: field/);
  });

  it('names an unreadable or invalid file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    await expect(loadConfig(join(dir, 'config.json'))).rejects.toThrow(/config\.json.*cannot be read \(ENOENT\)/);
    writeFileSync(join(dir, 'config.json'), '{"model_type": ');
    await expect(loadConfig(join(dir, 'config.json'))).rejects.toThrow(/config\.json.*not valid JSON/);
    writeFileSync(join(dir, 'config.json'), '[1]');
    await expect(loadConfig(join(dir, 'config.json'))).rejects.toThrow(/must be a JSON object/);
  });
});
