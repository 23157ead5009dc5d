/**
 * The `tensorflow` backend in Node: TensorFlow's C library through `@tensorflow/tfjs-node` or
 * `@tensorflow/tfjs-node-gpu`, optional peers a user may install. The browser build takes
 * tensorflow.browser.ts, so that no bundler meets the `import(pkg)` below.
 */

/** The packages that provide the `tensorflow` backend, tried in this order. */
export const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'] as const;

let tensorflowFrom: string | undefined;

/** The package the `tensorflow` backend was loaded from, once `useBackend('tensorflow')` has run. */
export function tensorflowPackage(): string | undefined {
  return tensorflowFrom;
}

/** Imports the first package of TENSORFLOW_PACKAGES that loads; an error naming each one's failure when none does. */
export async function loadTensorflow(onInfo: (message: string) => void): Promise<void> {
  if (tensorflowFrom !== undefined) return;
  const failures: string[] = [];
  for (const pkg of TENSORFLOW_PACKAGES) {
    try {
      await import(pkg);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const missing = err.code === 'ERR_MODULE_NOT_FOUND' && err.message.includes(`'${pkg}'`);
      failures.push(`${pkg}: ${missing ? 'not installed' : `installed but failed to load (${err.message.split('\n')[0]})`}`);
      continue;
    }
    tensorflowFrom = pkg;
    onInfo(`bge-m3-tfjs: backend 'tensorflow' is ${pkg}`);
    return;
  }
  throw new Error(`backend 'tensorflow' needs one of the optional packages ${TENSORFLOW_PACKAGES.join(' or ')} (npm install ${TENSORFLOW_PACKAGES[0]}, or ${TENSORFLOW_PACKAGES[1]} for CUDA); none could be loaded: ${failures.join('; ')}`);
}
