import * as tf from '@tensorflow/tfjs';
import { Adam, type AdamOptions } from './adam.ts';
import { tripletLoss, type TripletLossOptions } from './loss.ts';
import { createGradientFunction, type RevBiFPN } from '../model/index.ts';
import { OrtTrainingStep } from './ort-step/index.ts';
import type { NamedTensor } from './tensor-file.ts';
import { modelTensors, loadTensorsInto } from './model-dir.ts';

/** `ort`: the whole step as one ONNX Runtime graph (fast); `tfjs`: tfjs autodiff on the chosen backend (the oracle). */
export type TrainingEngineName = 'ort' | 'tfjs';

/** One training step's machinery, whichever engine runs it; the tfjs model stays the record of the weights. */
export interface StepEngine {
  readonly name: TrainingEngineName;
  /** One step on [anchors; neighbors; distants] NHWC at learning rate `lr`; returns the loss before the update. */
  step(batch: Float32Array, shape: [number, number, number, number], lr: number): Promise<number>;
  /** Weights and running statistics by ParamStore name. */
  weights(): Map<string, NamedTensor>;
  adamState(): { step: number; tensors: Map<string, NamedTensor> };
  restore(weights: Map<string, NamedTensor>, adam: { step: number; tensors: Map<string, NamedTensor> }, source: string): void;
  /** Copies the engine's weights into the tfjs model (before saving or recalibrating). */
  syncModel(): void;
  dispose(): Promise<void>;
}

export async function createStepEngine(
  name: TrainingEngineName,
  model: RevBiFPN,
  opts: { loss: TripletLossOptions; adam: AdamOptions; threads?: number },
): Promise<StepEngine> {
  return name === 'ort' ? ortEngine(model, opts) : tfjsEngine(model, opts);
}

async function ortEngine(model: RevBiFPN, opts: { loss: TripletLossOptions; adam: AdamOptions; threads?: number }): Promise<StepEngine> {
  const ort = await OrtTrainingStep.create(model, { lossOptions: opts.loss, adamOptions: opts.adam, threads: opts.threads });
  return {
    name: 'ort',
    step: (batch, shape, lr) => ort.step(batch, shape, lr),
    weights: () => ort.readWeights(),
    adamState: () => ({ step: ort.stepCount, tensors: ort.adamState() }),
    restore(weights, adam, source) {
      loadTensorsInto(model, weights, source);
      ort.loadWeights();
      ort.restoreAdam(adam.step, adam.tensors);
    },
    syncModel: () => ort.writeWeights(),
    dispose: () => ort.dispose(),
  };
}

function tfjsEngine(model: RevBiFPN, opts: { loss: TripletLossOptions; adam: AdamOptions }): StepEngine {
  const adam = new Adam(opts.adam);
  const params = new Map(model.params.entries());
  // Each unit's gradients update its weights as soon as they are final, so gradient memory stays flat with depth.
  const gradients = createGradientFunction(model, (z) => tripletLoss(z, opts.loss), {
    onGradients: (grads) => {
      adam.update(params, grads);
      tf.dispose([...grads.values()]);
    },
  });
  return {
    name: 'tfjs',
    async step(batch, shape, lr) {
      return tf.tidy(() => {
        adam.beginStep(lr);
        return gradients(tf.tensor4d(batch, shape)).value.dataSync()[0];
      });
    },
    weights: () => modelTensors(model),
    adamState: () => ({ step: adam.step, tensors: adam.state() }),
    restore(weights, state, source) {
      loadTensorsInto(model, weights, source);
      adam.restore(state.step, state.tensors);
    },
    syncModel: () => {},
    dispose: async () => adam.dispose(),
  };
}
