export {
  DEFAULT_HEAD_POOLING,
  DEFAULT_PROJECTOR,
  DEFAULT_STEM_BLOCK,
  HEAD_POOLINGS,
  PROJECTORS,
  STEM_BLOCKS,
  STREAM_COUNT,
  TILE_MULTIPLE,
  backboneConfigs,
  scaledWidths,
  resolveBackboneConfig,
  scaleWidths,
  siloCount,
  stemRepeatedChannels,
  streamSize,
  streamWidths,
  validateBackboneConfig,
  type BackboneConfig,
  type HeadPooling,
  type Projector,
  type BackbonePresetName,
} from './config.ts';
export { BatchStatsRecorder, ParamStore, type BatchStats, type ForwardContext, type Initializer, type ParamSpec } from './params.ts';
export {
  BatchNorm,
  BilinearUpsample,
  Conv2D,
  ConvBN,
  DepthwiseConv2D,
  Layer,
  MBConv,
  Sequential,
  SqueezeExcite,
  TensorLayer,
  hardSigmoid,
  hardSwish,
  type Activation,
  type LayerDescription,
  type MBConvOptions,
} from './layers.ts';
export { ReversibleBlock, ReversibleLayer, RevSilo, Stem, type SiloStreamSettings } from './reversible.ts';
export { visitLayer, type BodyUnit, type LayerVisitor, type SiloMapLayer } from './kinds.ts';
export { EmbeddingHead, RevBiFPN, createBackbone, type BackboneDescription, type BackboneOptions } from './backbone.ts';
export {
  createGradientFunction,
  type EmbeddingLoss,
  type GradientFunction,
  type GradientFunctionOptions,
  type TrainStepGradients,
} from './training.ts';
