import * as tf from '@tensorflow/tfjs';
import type { NamedTensor } from './tensor-file.ts';

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** The reference Tile2Vec optimiser: Adam with lr 1e-3 and betas (0.5, 0.999). */
export const DEFAULT_ADAM: AdamOptions = { lr: 1e-3, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 };

/**
 * Adam as PyTorch computes it, with its whole state (step and both moments) as named tensors, so a checkpoint
 * carries it exactly and another engine can run the same update.
 */
export class Adam {
  step = 0;
  /** The current step's learning rate (a schedule may change it every step). */
  private lr: number;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(readonly options: AdamOptions) {
    this.lr = options.lr;
  }

  /** One whole step: count it, then update every parameter that has a gradient. */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>): void {
    this.beginStep();
    this.update(params, grads);
  }

  /** Counts a step at learning rate `lr`; `update` may then be called several times, e.g. per unit as gradients stream out. */
  beginStep(lr = this.options.lr): void {
    this.step += 1;
    this.lr = lr;
  }

  /** Updates the parameters that `grads` names, with the bias corrections of the current step. */
  update(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>): void {
    if (this.step === 0) throw new Error('Adam.update before beginStep');
    const { beta1, beta2, epsilon } = this.options;
    const lr = this.lr;
    const correction1 = 1 - beta1 ** this.step;
    const correction2 = 1 - beta2 ** this.step;
    for (const [name, grad] of grads) {
      const param = params.get(name);
      if (!param) throw new Error(`gradient for unknown parameter ${name}`);
      const m = this.moment(this.m, name, param);
      const v = this.moment(this.v, name, param);
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2)));
        const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(correction2)), epsilon);
        param.assign(tf.sub(param, tf.mul(tf.div(m, denom), lr / correction1)));
      });
    }
  }

  private moment(store: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let moment = store.get(name);
    if (!moment) {
      moment = tf.variable(tf.zerosLike(like), false);
      store.set(name, moment);
    }
    return moment;
  }

  /** Both moments by name (`m/<param>`, `v/<param>`), for checkpoints. */
  state(): Map<string, NamedTensor> {
    const out = new Map<string, NamedTensor>();
    for (const [prefix, store] of [['m', this.m], ['v', this.v]] as const) {
      for (const [name, t] of store) out.set(`${prefix}/${name}`, { shape: t.shape, data: t.dataSync() as Float32Array });
    }
    return out;
  }

  restore(step: number, tensors: Map<string, NamedTensor>): void {
    this.dispose();
    this.step = step;
    for (const [key, t] of tensors) {
      const slash = key.indexOf('/');
      const store = key.slice(0, slash) === 'm' ? this.m : key.slice(0, slash) === 'v' ? this.v : undefined;
      if (store) store.set(key.slice(slash + 1), tf.variable(tf.tensor(t.data, t.shape), false));
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
