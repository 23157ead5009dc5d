/**
 * Training losses for sparse heads, on representations rep [N, C] whose dot products are the
 * lexical matching scores (see `TrainableHead.represent`).
 *
 * - InfoNCE: each query against every document of the step (its positive, the other queries'
 *   positives as in-batch negatives, and the hard negatives), softmax over scores / temperature,
 *   cross-entropy with the positive.
 * - FLOPS (SPLADE, Paria et al. 2020): Σ_j (mean_i w_ij)², a smooth stand-in for the number of
 *   postings a query touches; it pushes weights that many texts share towards zero.
 * - Distillation (BGE-M3's self-knowledge distillation): KL(p_teacher ‖ p_student) between softmaxes
 *   over the same candidates, the teacher's scores from the dense or ColBERT head.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Scores of every query against every document: q [Bq, C] · d [Nd, C]ᵀ -> [Bq, Nd]. */
export function scoreMatrix(q: tf.Tensor2D, d: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(q, d, false, true);
}

/**
 * Mean over queries of −log softmax(scores_i / τ)[positive_i]. `positives[i]` is the column of
 * query i's positive in `scores` [Bq, Nd].
 */
export function infoNce(scores: tf.Tensor2D, positives: readonly number[], temperature: number): tf.Scalar {
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  const [Bq, Nd] = scores.shape;
  if (positives.length !== Bq) throw new Error(`infoNce: ${positives.length} positives for ${Bq} queries`);
  const target = new Float32Array(Bq * Nd);
  positives.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= Nd) throw new RangeError(`infoNce: positive ${p} of query ${i} is not a column in [0, ${Nd})`);
    target[i * Nd + p] = 1;
  });
  const logp = tf.logSoftmax(tf.div(scores, temperature)); // [Bq, Nd]
  return tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.tensor2d(target, [Bq, Nd])), 1))) as tf.Scalar;
}

/** SPLADE's FLOPS regulariser Σ_j (mean_i rep_ij)² over the columns of rep [N, C]. */
export function flops(rep: tf.Tensor2D): tf.Scalar {
  return tf.sum(tf.square(tf.mean(rep, 0))) as tf.Scalar;
}

/**
 * KL(softmax(teacher / τ) ‖ softmax(student / τ)), averaged over queries; `teacher` [Bq, Nd] holds
 * constants (no gradient flows into it).
 */
export function distillation(student: tf.Tensor2D, teacher: tf.Tensor2D, temperature: number): tf.Scalar {
  if (!tf.util.arraysEqual(student.shape, teacher.shape)) throw new Error(`distillation: student [${student.shape}] and teacher [${teacher.shape}] scores differ in shape`);
  const logpt = tf.logSoftmax(tf.div(teacher, temperature));
  const logps = tf.logSoftmax(tf.div(student, temperature));
  return tf.mean(tf.sum(tf.mul(tf.exp(logpt), tf.sub(logpt, logps)), 1)) as tf.Scalar;
}

/** Non-zero weights per row of rep [N, C], averaged (what the progress bar shows). */
export function meanNonZeros(rep: tf.Tensor2D): number {
  return tf.tidy(() => tf.mean(tf.sum(tf.cast(tf.greater(rep, 0), 'float32'), 1)).dataSync()[0]!);
}
