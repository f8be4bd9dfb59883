import * as tf from '@tensorflow/tfjs';
import { BatchStatsRecorder, type RevBiFPN } from '../model/index.ts';

/**
 * Sets every BatchNorm's running statistics to the average of its batch statistics over `batches` (train-mode
 * forward passes, weights untouched): "precise BN". After a short run the momentum averages still remember the
 * random init; inference in eval mode needs statistics of the trained weights.
 */
export function recalibrateBatchNorm(model: RevBiFPN, batches: tf.Tensor4D[]): void {
  if (batches.length === 0) return;
  const sums = new Map<string, { mean: tf.Tensor1D; variance: tf.Tensor1D; count: number }>();
  for (const x of batches) {
    const recorder = new BatchStatsRecorder();
    try {
      tf.tidy(() => {
        model.head.call(model.forwardStreams(x, { training: true, recorder }), { training: true, recorder });
      });
      for (const [name, s] of recorder.entries()) {
        const prev = sums.get(name);
        // Unbiased variance, as the running statistic is defined (PyTorch convention).
        const unbiased = tf.tidy(() => (s.count > 1 ? tf.mul(s.variance, s.count / (s.count - 1)) : s.variance.clone()) as tf.Tensor1D);
        if (!prev) sums.set(name, { mean: s.mean.clone(), variance: unbiased, count: 1 });
        else {
          const next = { mean: tf.add(prev.mean, s.mean) as tf.Tensor1D, variance: tf.add(prev.variance, unbiased) as tf.Tensor1D, count: prev.count + 1 };
          tf.dispose([prev.mean, prev.variance, unbiased]);
          sums.set(name, next);
        }
      }
    } finally {
      recorder.dispose();
    }
  }
  tf.tidy(() => {
    for (const [name, s] of sums) {
      model.params.get(`${name}.movingMean`).assign(tf.div(s.mean, s.count));
      model.params.get(`${name}.movingVariance`).assign(tf.div(s.variance, s.count));
    }
  });
  for (const s of sums.values()) tf.dispose([s.mean, s.variance]);
}
