/**
 * The wasm backend's own GEMM (a relaxed-SIMD FMA kernel on its heap, see kernel.wat and its parts) and what the
 * forward needs of it. Every function returns null when the kernel cannot run (another backend, no
 * relaxed SIMD, the single-threaded build, or switched off): the caller then takes its XNNPACK path.
 */
export { GEMM_KERNEL, LINEARS_KERNEL, closeKernels, kernelActive, kernelEnabled, kernelMatMul, kernelStatus, linearRowMajor, linearsRowMajor, setKernelEnabled, startKernels, type KernelStatus } from './gemm.js';
export { kernelSupport } from './feature.js';
export { fmaPeakGflops, forwardGemmShapes, timeGemmShapes, type GemmShapeResult } from './gemm-timing.js';
export { layerNormRows, softmaxRows, LAYER_NORM_KERNEL, SOFTMAX_KERNEL } from './rows.js';
export { ATTENTION_KERNEL, attentionRows, kernelAttention } from './attention.js';
