/** The `tensorflow` backend in a page: there is none (TensorFlow's C library loads in Node only). */
import type * as NodeTensorflow from './tensorflow.js';

export const TENSORFLOW_PACKAGES: typeof NodeTensorflow.TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];

export const tensorflowPackage: typeof NodeTensorflow.tensorflowPackage = () => undefined;

export const loadTensorflow: typeof NodeTensorflow.loadTensorflow = async () => {
  throw new Error("backend 'tensorflow' (@tensorflow/tfjs-node) runs in Node only; in a page use 'wasm' (default), 'webgpu' or 'cpu'");
};
