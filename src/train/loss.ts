import * as tf from '@tensorflow/tfjs';

/**
 * `margin`: Tile2Vec's hinge on Euclidean distances. `infonce`: each anchor must pick its neighbor out of every
 * neighbor and distant tile in the batch (and each neighbor its anchor), by cosine similarity over a temperature;
 * the batch's other tiles are the negatives, so every step contrasts 2B candidates instead of one.
 */
export const TRIPLET_OBJECTIVES = ['margin', 'infonce'] as const;
export type TripletObjective = (typeof TRIPLET_OBJECTIVES)[number];

export interface TripletLossOptions {
  objective: TripletObjective;
  /** Margin m of the hinge (`margin` only). */
  margin: number;
  /** Weight λ of the embedding-norm regulariser. */
  l2: number;
  /** Temperature τ of the cosine logits (`infonce` only). */
  temperature: number;
}

/** Tile2Vec's defaults for CPU-sized runs; the reference NAIP run used m = 10, λ = 0.01 at z = 512. */
export const DEFAULT_TRIPLET_LOSS: TripletLossOptions = { objective: 'margin', margin: 10, l2: 0.01, temperature: 0.1 };

/**
 * The regulariser's weight when none is given: the hinge needs it to keep distances bounded; cosine logits do not
 * see the norm, so InfoNCE runs without it.
 */
export function defaultL2(objective: TripletObjective): number {
  return objective === 'infonce' ? 0 : DEFAULT_TRIPLET_LOSS.l2;
}

/** Whether a model trained with this loss compares embeddings by direction, so inference emits unit vectors. */
export function unitEmbeddings(loss: TripletLossOptions): boolean {
  return loss.objective === 'infonce';
}

// Keeps the gradient of sqrt finite when two embeddings coincide; far below float32 resolution of real distances.
const DISTANCE_EPSILON = 1e-12;

function distance(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.sqrt(tf.add(tf.sum(tf.square(tf.sub(a, b)), 1), DISTANCE_EPSILON)) as tf.Tensor1D;
}

function unit(z: tf.Tensor2D): tf.Tensor2D {
  return tf.div(z, tf.sqrt(tf.add(tf.sum(tf.square(z), 1, true), DISTANCE_EPSILON)));
}

/** Mean cross-entropy of picking candidate i for query i, logits = cosine / τ. */
function contrast(queries: tf.Tensor2D, candidates: tf.Tensor2D, temperature: number): tf.Scalar {
  const logits = tf.div(tf.matMul(queries, candidates, false, true), temperature) as tf.Tensor2D;
  const own = tf.sum(tf.mul(queries, tf.slice(candidates, [0, 0], queries.shape)), 1);
  return tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.div(own, temperature)));
}

/**
 * Loss over embeddings stacked as [anchors; neighbors; distants]:
 * - `margin`, the Tile2Vec triplet loss (Jean et al., AAAI 2019), with Euclidean (not squared) distances and the
 *   Frobenius norm of each batch of embeddings, as the reference:
 *   mean_i relu(‖z_a − z_n‖₂ − ‖z_a − z_d‖₂ + m) + λ (‖Z_a‖ + ‖Z_n‖ + ‖Z_d‖)
 * - `infonce`, on unit vectors u: ½ CE(U_a → [U_n; U_d]) + ½ CE(U_n → [U_a; U_d]) + the same regulariser.
 */
export function tripletLoss(embeddings: tf.Tensor2D, options: TripletLossOptions): tf.Scalar {
  return tf.tidy(() => {
    const batch = embeddings.shape[0] / 3;
    if (!Number.isInteger(batch)) throw new Error(`triplet loss needs 3·B embeddings, got ${embeddings.shape[0]}`);
    const [za, zn, zd] = tf.split(embeddings, 3, 0) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    let objective: tf.Scalar;
    if (options.objective === 'infonce') {
      const [ua, un, ud] = [unit(za), unit(zn), unit(zd)];
      const forward = contrast(ua, tf.concat([un, ud], 0), options.temperature);
      const backward = contrast(un, tf.concat([ua, ud], 0), options.temperature);
      objective = tf.mul(tf.add(forward, backward), 0.5);
    } else {
      objective = tf.mean(tf.relu(tf.add(tf.sub(distance(za, zn), distance(za, zd)), options.margin)));
    }
    if (options.l2 === 0) return objective;
    const norms = tf.addN([tf.norm(za), tf.norm(zn), tf.norm(zd)]);
    return tf.add(objective, tf.mul(norms, options.l2)) as tf.Scalar;
  });
}
