import type { AdamOptions } from '../adam.ts';
import type { BatchStatsValues } from './layer-gradients.ts';
import type { Ops, Value } from './ops.ts';
import type { FlatLayout } from './param-layout.ts';

export interface AdamState {
  params: Value;
  m: Value;
  v: Value;
}

/**
 * PyTorch Adam over the flat weight vector, with src/train/adam.ts's operation order:
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²,  p ← p − (lr/c1)·m / (√v/√c2 + ε).
 * `lrOverCorrection1` = lr/(1−β1^t) and `sqrtCorrection2` = √(1−β2^t) are inputs, so the step count stays outside.
 */
export function adamUpdate(ops: Ops, state: AdamState, grad: Value, lrOverCorrection1: Value, sqrtCorrection2: Value, options: AdamOptions): AdamState {
  const { beta1, beta2, epsilon } = options;
  const m = ops.add(ops.mul(state.m, beta1), ops.mul(grad, 1 - beta1), 'm_next');
  const v = ops.add(ops.mul(state.v, beta2), ops.mul(ops.mul(grad, grad), 1 - beta2), 'v_next');
  const denom = ops.add(ops.div(ops.unary('Sqrt', v), sqrtCorrection2), epsilon);
  const params = ops.sub(state.params, ops.mul(ops.div(m, denom), lrOverCorrection1), 'params_next');
  return { params, m, v };
}

/**
 * Moves every running statistic one momentum step toward the forward pass's batch statistics (once per step, as
 * RevBiFPN.applyBatchStats): the running variance takes the unbiased estimate.
 */
export function runningStatsUpdate(ops: Ops, running: Value, layout: FlatLayout, stats: Map<string, BatchStatsValues>, momentum: number): Value {
  const unbias = new Float32Array(layout.size);
  const parts = layout.entries.map(({ name, offset, size }) => {
    const [bn, kind] = splitStatName(name);
    const recorded = stats.get(bn);
    if (!recorded) throw new Error(`BatchNorm "${bn}" was not evaluated in the forward pass`);
    const { count } = recorded;
    unbias.fill(kind === 'movingVariance' && count > 1 ? count / (count - 1) : 1, offset, offset + size);
    return ops.reshape(kind === 'movingMean' ? recorded.mean : recorded.variance, [size]);
  });
  if (stats.size * 2 !== layout.entries.length) throw new Error('internal: running statistics and recorded BatchNorms differ');
  const batch = ops.mul(ops.concat(parts, 0, 'batch_stats'), ops.constant('unbias', unbias, [layout.size]));
  return ops.add(ops.mul(running, 1 - momentum), ops.mul(batch, momentum), 'running_next');
}

function splitStatName(name: string): [string, 'movingMean' | 'movingVariance'] {
  const dot = name.lastIndexOf('.');
  const kind = name.slice(dot + 1);
  if (kind !== 'movingMean' && kind !== 'movingVariance') throw new Error(`unexpected non-trainable tensor "${name}"`);
  return [name.slice(0, dot), kind];
}
