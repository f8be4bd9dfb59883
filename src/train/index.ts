/** The training stage: the RevBiFPN backbone, the Tile2Vec loss and trainer, and the model directory format. */
export { train, TRAIN_DEFAULTS, learningRateAt, LEARNING_RATE_SCHEDULES, type LearningRateSchedule, type TrainOptions, type TrainProgress, type TrainSummary } from './trainer.ts';
export { tripletLoss, defaultL2, unitEmbeddings, DEFAULT_TRIPLET_LOSS, TRIPLET_OBJECTIVES, type TripletLossOptions, type TripletObjective } from './loss.ts';
export { Adam, DEFAULT_ADAM, type AdamOptions } from './adam.ts';
export { loadModel, readCard, saveWeights, MODEL_FILES, type LoadedModel, type ModelCard } from './model-dir.ts';
export { initBackend, type BackendName } from './engine/index.ts';
export { createBackbone, resolveBackboneConfig, backboneConfigs, HEAD_POOLINGS, PROJECTORS, type BackboneConfig, type BackbonePresetName, type HeadPooling, type Projector, type RevBiFPN } from '../model/index.ts';
export { TEST_TIME_AUGMENTATIONS, type TestTimeAugmentation } from '../onnx/index.ts';
