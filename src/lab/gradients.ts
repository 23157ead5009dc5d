/**
 * Training needs the gradient of every op a head uses registered with tfjs-core (`tf.grad`,
 * optimizers). tfjs-core ships those registrations only as ES modules that plain Node cannot load
 * (extensionless imports); the union package `@tensorflow/tfjs` registers them on load. This makes
 * sure they are there before a training step, and says what to install when they are not.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Kernels whose gradients the lab's heads and losses use. */
const NEEDED = ['Max', 'Log1p', 'Relu', 'Erf', 'BatchMatMul', 'LogSoftmax', 'Rsqrt', 'Mean', 'Sum', 'Multiply', 'Add', 'Square'];

function registered(): boolean {
  const get = (tf as unknown as { getGradient?: (kernel: string) => unknown }).getGradient;
  return typeof get === 'function' && NEEDED.every((k) => get(k) !== undefined);
}

// The union package when installed (Node), else tfjs-core's own module (bundlers, vitest).
const SOURCES = ['@tensorflow/tfjs', '@tensorflow/tfjs-core/dist/register_all_gradients.js'];

export async function ensureGradients(): Promise<void> {
  if (registered()) return;
  for (const spec of SOURCES) {
    try {
      await import(spec);
    } catch {
      continue;
    }
    if (registered()) return;
  }
  throw new Error('tfjs gradients are not registered, so a head cannot be trained: install @tensorflow/tfjs (the union package, same version as @tensorflow/tfjs-core) or import it before training');
}
