import * as tf from '@tensorflow/tfjs';

export interface TripletLossOptions {
  /** Margin m of the hinge. */
  margin: number;
  /** Weight λ of the embedding-norm regulariser. */
  l2: number;
}

/** Tile2Vec's defaults for CPU-sized runs; the reference NAIP run used m = 10, λ = 0.01 at z = 512. */
export const DEFAULT_TRIPLET_LOSS: TripletLossOptions = { margin: 10, l2: 0.01 };

// Keeps the gradient of sqrt finite when two embeddings coincide; far below float32 resolution of real distances.
const DISTANCE_EPSILON = 1e-12;

function distance(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor1D {
  return tf.sqrt(tf.add(tf.sum(tf.square(tf.sub(a, b)), 1), DISTANCE_EPSILON)) as tf.Tensor1D;
}

/**
 * Tile2Vec triplet loss (Jean et al., AAAI 2019), over embeddings stacked as [anchors; neighbors; distants]:
 *   mean_i relu(‖z_a − z_n‖₂ − ‖z_a − z_d‖₂ + m) + λ (‖Z_a‖ + ‖Z_n‖ + ‖Z_d‖)
 * with Euclidean (not squared) distances and the Frobenius norm of each batch of embeddings, as the reference.
 */
export function tripletLoss(embeddings: tf.Tensor2D, options: TripletLossOptions): tf.Scalar {
  return tf.tidy(() => {
    const batch = embeddings.shape[0] / 3;
    if (!Number.isInteger(batch)) throw new Error(`triplet loss needs 3·B embeddings, got ${embeddings.shape[0]}`);
    const [za, zn, zd] = tf.split(embeddings, 3, 0) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const hinge = tf.mean(tf.relu(tf.add(tf.sub(distance(za, zn), distance(za, zd)), options.margin)));
    if (options.l2 === 0) return hinge as tf.Scalar;
    const norms = tf.addN([tf.norm(za), tf.norm(zn), tf.norm(zd)]);
    return tf.add(hinge, tf.mul(norms, options.l2)) as tf.Scalar;
  });
}
