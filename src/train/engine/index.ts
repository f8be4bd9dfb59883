// Public API of the training engine: backend selection and the WASM training kernels.
export {
  initBackend, BackendNotInstalledError, NATIVE_PACKAGES,
  type BackendName, type EngineBackend, type InitBackendOptions, type ActiveBackend,
} from './backend.ts';
export { registerWasmTrainingKernels, wasmTrainingKernels } from './wasm-training-kernels.ts';
export {
  conv2dFilterGradient, conv2dInputGradient, depthwiseFilterGradient, depthwiseInputGradient,
  type ConvGradientParams,
} from './conv-gradients.ts';
export { findMissingTrainingKernels, trainingOpSuite, type TrainingOpCase } from './training-op-suite.ts';
export { wasmBinaryFolder } from './wasm-threads.ts';
