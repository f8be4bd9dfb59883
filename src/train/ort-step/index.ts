// Training on onnxruntime-node: one generated ONNX graph per training step.
export { OrtTrainingStep, type BatchShape, type OrtTrainingStepOptions, type StepGradients } from './ort-training-step.ts';
export { STEP_IO, STEP_OPSET, buildStepGraph, type StepGraph, type StepGraphMode, type StepGraphOptions } from './step-graph.ts';
export { FlatLayout, type LayoutEntry } from './param-layout.ts';
