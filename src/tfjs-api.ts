/**
 * The parts of TensorFlow.js's user API that `@tensorflow/tfjs-core` leaves to its union package:
 * the chained tensor methods (`t.mul(m)`, `t.sum()`) and the gradient of every op (`tf.grad`,
 * `tf.train.adam(…).minimize`). Hooks receive tensors, and a user writing a hook or training a head
 * on top of this package expects both. tfjs-core ships them only as ES modules that Node cannot load
 * on their own, so they come from the union package, which registers them on the same tfjs-core copy
 * this package computes with. Imported for its side effect by the package's entry points.
 */
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';

// Two copies of tfjs-core (e.g. mismatched versions) would register the methods on the other copy's
// Tensor class: say so at import time instead of failing later inside a user's hook.
if (typeof (tf.Tensor.prototype as { mul?: unknown }).mul !== 'function') {
  throw new Error(
    'bge-m3-tfjs: @tensorflow/tfjs registered its chained ops on a different copy of @tensorflow/tfjs-core; '
    + 'install matching versions of @tensorflow/tfjs and @tensorflow/tfjs-core (npm ls @tensorflow/tfjs-core)',
  );
}
