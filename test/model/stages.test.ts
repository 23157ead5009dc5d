/**
 * Teacher-forced stage tests: each stage is fed the reference's own input for that stage and its
 * output is compared with the reference's, so a failure names the stage rather than surfacing only
 * at the last layer. Uses the four stage cases, which store every stage of every layer.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { HookRunner } from '../../src/hooks/runner.js';
import { layerName, LAYER_SITES, type ActivationName } from '../../src/hooks/names.js';
import { selfAttention } from '../../src/model/attention.js';
import { gelu, linear } from '../../src/model/ops.js';
import { embeddings, positionIds } from '../../src/model/embeddings.js';
import { colbertHead } from '../../src/heads/colbert.js';
import { denseHead } from '../../src/heads/dense.js';
import { sparseHead } from '../../src/heads/sparse.js';
import { fastOps } from '../../src/model/fast/ops.js';
import { textbookOps } from '../../src/model/ops.js';
import { CHECKPOINTS } from '../helpers/fixtures.js';
import { ErrorLog, loadCases, maxAbsDiff, useModelAndReference } from '../helpers/reference.js';
import type { HostTensor } from '../../src/weights/types.js';

const STAGE_CASES = ['readme_q1', 'zh_bge', 'repeat_en', 'special_literal'];
const cases = new Map(loadCases().map((c) => [c.id, c]));
/** The reference tensor with a batch axis of 1. */
const batched = (h: HostTensor): tf.Tensor => tf.tensor(h.data, [1, ...h.shape]);

describe.each(CHECKPOINTS)('%s stages fed the reference input', (ckpt) => {
  const fx = useModelAndReference(ckpt);

  it.each(STAGE_CASES)('case %s: every stage of every layer and every head', async (id) => {
    const c = fx.m3.config;
    const L = cases.get(id)!.input_ids.length;
    const log = new ErrorLog(`${ckpt}/${id} teacher-forced stages`);
    const compare = async (name: string, got: tf.Tensor): Promise<void> => {
      const want = await fx.ref.tensor(id, name);
      const err = maxAbsDiff(got.dataSync(), want.data);
      got.dispose();
      log.add(name.replace(/layer\.\d+\./, 'layer.{i}.'), err);
      expect(err, `${id}/${name}`).toBeLessThanOrEqual(name.endsWith('hook_probs') ? 1e-5 : 1e-4);
    };
    const before = tf.memory().numTensors;

    // embeddings, from the ids
    const ids = cases.get(id)!.input_ids;
    const emb = tf.tidy(() => embeddings(tf.tensor2d([ids], undefined, 'int32'),
      tf.tensor2d(positionIds([ids], c.pad_token_id), undefined, 'int32'), fx.m3.params.embeddings, c, new HookRunner()));
    await compare('embeddings.hook_out', tf.squeeze(emb, [0]));

    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = fx.m3.params.encoder.layer[i]!;
      const inputName = i === 0 ? 'embeddings.hook_out' : `encoder.layer.${i - 1}.hook_out`;
      const x = batched(await fx.ref.tensor(id, inputName)) as tf.Tensor3D; // [1, L, H]
      // attention.self from the reference layer input: q, k, v, scores, probs, context, in both formulations
      const noMask = tf.zeros([1, 1, 1, L]) as tf.Tensor4D;
      const opSets = [textbookOps, fastOps()];
      for (const ops of opSets) {
        const runner = new HookRunner({ cache: (n) => n.startsWith(`encoder.layer.${i}.attention.self.`) });
        tf.tidy(() => selfAttention(x, noMask, p.attention.self, c, i, runner, ops)).dispose();
        for (const site of LAYER_SITES.filter((s) => s.startsWith('attention.self.'))) {
          const name = layerName(i, site);
          await compare(name, tf.squeeze(runner.cache.get(name)!, [0]));
        }
        tf.dispose([...runner.cache.values()]);
      }
      // attention.output from the reference context and layer input
      const ctx = batched(await fx.ref.tensor(id, layerName(i, 'attention.self.hook_out')));
      const a = batched(await fx.ref.tensor(id, layerName(i, 'attention.output.hook_out')));
      const g = batched(await fx.ref.tensor(id, layerName(i, 'intermediate.hook_out')));
      for (const ops of opSets) {
        await compare(layerName(i, 'attention.output.hook_out'), tf.tidy(() => ops.addAndNorm(ctx, x, p.attention.output, c.layer_norm_eps)));
        // intermediate from the reference attention.output
        await compare(layerName(i, 'intermediate.hook_out'), tf.tidy(() => ops.linearGelu(a, p.intermediate.dense)));
        // output from the reference intermediate and attention.output
        await compare(layerName(i, 'hook_out'), tf.tidy(() => ops.addAndNorm(g, a, p.output, c.layer_norm_eps)));
      }
      tf.dispose([x, noMask, ctx, a, g]);
    }

    // heads from the reference encoder output
    const h = batched(await fx.ref.tensor(id, `encoder.layer.${c.num_hidden_layers - 1}.hook_out`)) as tf.Tensor3D;
    const runner = new HookRunner({ cache: (n: ActivationName) => !n.startsWith('encoder.') });
    tf.tidy(() => {
      denseHead(h, runner);
      sparseHead(h, fx.m3.params.sparse_linear, runner);
      colbertHead(h, tf.ones([1, L]) as tf.Tensor2D, fx.m3.params.colbert_linear, runner);
    });
    for (const name of ['dense_head.hook_out', 'sparse_linear.hook_out', 'sparse_head.hook_out', 'colbert_linear.hook_out', 'colbert_head.hook_out'] as const) {
      await compare(name, tf.squeeze(runner.cache.get(name)!, [0]));
    }
    tf.dispose([h, emb, ...runner.cache.values()]);
    expect(tf.memory().numTensors).toBe(before);
    log.print();
  });
});
