import type { TripletLossOptions } from '../loss.ts';
import type { Ops, Value } from './ops.ts';

// As src/train/loss.ts: keeps sqrt's gradient finite when two embeddings coincide.
const DISTANCE_EPSILON = 1e-12;

/**
 * The triplet loss of src/train/loss.ts on embeddings [3B, dim] stacked as anchors; neighbors; distants, and its
 * gradient with respect to them:
 *   L = mean_i relu(d_an − d_ad + m) + λ(‖Z_a‖ + ‖Z_n‖ + ‖Z_d‖),  d = sqrt(Σ(·)² + 1e-12)
 *   ∂/∂z_a = w(z_a − z_n)/d_an − w(z_a − z_d)/d_ad + λ z_a/‖Z_a‖,  w = [hinge active]/B, and so on.
 */
export function tripletLossWithGradient(ops: Ops, embeddings: Value, options: TripletLossOptions): { loss: Value; dEmbeddings: Value } {
  const [rows, dim] = embeddings.shape;
  const batch = rows / 3;
  if (!Number.isInteger(batch)) throw new Error(`triplet loss needs 3·B embeddings, got ${rows}`);
  const [za, zn, zd] = ops.split(embeddings, [batch, batch, batch], 0, 'triplet');
  const toNeighbor = ops.sub(za, zn);
  const toDistant = ops.sub(za, zd);
  const distance = (diff: Value, hint: string) => ops.unary('Sqrt', ops.add(ops.reduceSum(ops.mul(diff, diff), [1], true), DISTANCE_EPSILON), {}, hint);
  const dNeighbor = distance(toNeighbor, 'd_neighbor');
  const dDistant = distance(toDistant, 'd_distant');
  const margin = ops.add(ops.sub(dNeighbor, dDistant), options.margin, 'margin_violation');
  const hinge = ops.reduceMean(ops.unary('Relu', margin), [0, 1], false, 'hinge');

  // relu' as tfjs takes it: 1 where the argument is > 0.
  const active = ops.op('Cast', [ops.greater(margin, 0)], margin.shape, { to: 1 });
  const weight = ops.mul(active, 1 / batch);
  const pullNeighbor = ops.mul(toNeighbor, ops.div(weight, dNeighbor));
  const pushDistant = ops.mul(toDistant, ops.div(weight, dDistant));
  let dza = ops.sub(pullNeighbor, pushDistant);
  let dzn = ops.mul(pullNeighbor, -1);
  let dzd = pushDistant;
  let loss = hinge;

  if (options.l2 !== 0) {
    const norm = (z: Value) => ops.unary('Sqrt', ops.reduceSum(ops.mul(z, z), [0, 1], false));
    const [na, nn, nd] = [norm(za), norm(zn), norm(zd)];
    loss = ops.add(hinge, ops.mul(ops.sum([na, nn, nd]), options.l2));
    dza = ops.add(dza, ops.mul(za, ops.div(ops.scalar(options.l2), na)));
    dzn = ops.add(dzn, ops.mul(zn, ops.div(ops.scalar(options.l2), nn)));
    dzd = ops.add(dzd, ops.mul(zd, ops.div(ops.scalar(options.l2), nd)));
  }
  const dEmbeddings = ops.concat([dza, dzn, dzd], 0, 'd_embeddings');
  if (dEmbeddings.shape.join() !== [rows, dim].join()) throw new Error('internal: loss gradient shape');
  return { loss, dEmbeddings };
}
