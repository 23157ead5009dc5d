/**
 * Backend selection. `wasm` (default) ships inside its npm package; `cpu` is pure JS (slow, a
 * fallback); `tensorflow` is `@tensorflow/tfjs-node`, an optional peer a user may install.
 */
import * as tf from '@tensorflow/tfjs-core';

export const BACKENDS = ['wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKENDS)[number];

export async function useBackend(name: BackendName = 'wasm'): Promise<void> {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new Error(`unknown backend '${String(name)}': expected one of ${BACKENDS.join(', ')}`);
  }
  if (tf.getBackend() === name) return;
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  else if (name === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
  else {
    const pkg = '@tensorflow/tfjs-node';
    try {
      await import(pkg);
    } catch (e) {
      throw new Error(`backend 'tensorflow' needs the optional package ${pkg} (npm install ${pkg}); it could not be loaded: ${(e as Error).message}`);
    }
  }
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
}
