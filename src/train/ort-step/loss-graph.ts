import type { TripletLossOptions } from '../loss.ts';
import type { Ops, Value } from './ops.ts';

// As src/train/loss.ts: keeps sqrt's gradient finite when two embeddings coincide.
const DISTANCE_EPSILON = 1e-12;

interface LossTerms {
  loss: Value;
  dza: Value;
  dzn: Value;
  dzd: Value;
}

/**
 * The loss of src/train/loss.ts on embeddings [3B, dim] stacked as anchors; neighbors; distants, and its gradient
 * with respect to them.
 */
export function tripletLossWithGradient(ops: Ops, embeddings: Value, options: TripletLossOptions): { loss: Value; dEmbeddings: Value } {
  const [rows, dim] = embeddings.shape;
  const batch = rows / 3;
  if (!Number.isInteger(batch)) throw new Error(`triplet loss needs 3·B embeddings, got ${rows}`);
  const [za, zn, zd] = ops.split(embeddings, [batch, batch, batch], 0, 'triplet');
  let { loss, dza, dzn, dzd } = options.objective === 'infonce' ? infoNce(ops, za, zn, zd, options.temperature) : marginHinge(ops, za, zn, zd, options.margin);

  if (options.l2 !== 0) {
    const norm = (z: Value) => ops.unary('Sqrt', ops.reduceSum(ops.mul(z, z), [0, 1], false));
    const [na, nn, nd] = [norm(za), norm(zn), norm(zd)];
    loss = ops.add(loss, ops.mul(ops.sum([na, nn, nd]), options.l2));
    dza = ops.add(dza, ops.mul(za, ops.div(ops.scalar(options.l2), na)));
    dzn = ops.add(dzn, ops.mul(zn, ops.div(ops.scalar(options.l2), nn)));
    dzd = ops.add(dzd, ops.mul(zd, ops.div(ops.scalar(options.l2), nd)));
  }
  const dEmbeddings = ops.concat([dza, dzn, dzd], 0, 'd_embeddings');
  if (dEmbeddings.shape.join() !== [rows, dim].join()) throw new Error('internal: loss gradient shape');
  return { loss, dEmbeddings };
}

/**
 *   L = mean_i relu(d_an − d_ad + m),  d = sqrt(Σ(·)² + 1e-12)
 *   ∂/∂z_a = w(z_a − z_n)/d_an − w(z_a − z_d)/d_ad,  w = [hinge active]/B, and so on.
 */
function marginHinge(ops: Ops, za: Value, zn: Value, zd: Value, margin: number): LossTerms {
  const batch = za.shape[0];
  const toNeighbor = ops.sub(za, zn);
  const toDistant = ops.sub(za, zd);
  const distance = (diff: Value, hint: string) => ops.unary('Sqrt', ops.add(ops.reduceSum(ops.mul(diff, diff), [1], true), DISTANCE_EPSILON), {}, hint);
  const dNeighbor = distance(toNeighbor, 'd_neighbor');
  const dDistant = distance(toDistant, 'd_distant');
  const violation = ops.add(ops.sub(dNeighbor, dDistant), margin, 'margin_violation');
  const loss = ops.reduceMean(ops.unary('Relu', violation), [0, 1], false, 'hinge');

  // relu' as tfjs takes it: 1 where the argument is > 0.
  const active = ops.op('Cast', [ops.greater(violation, 0)], violation.shape, { to: 1 });
  const weight = ops.mul(active, 1 / batch);
  const pullNeighbor = ops.mul(toNeighbor, ops.div(weight, dNeighbor));
  const pushDistant = ops.mul(toDistant, ops.div(weight, dDistant));
  return { loss, dza: ops.sub(pullNeighbor, pushDistant), dzn: ops.mul(pullNeighbor, -1), dzd: pushDistant };
}

/**
 * On unit vectors u = z / r, r = sqrt(Σz² + 1e-12):
 *   L = ½ CE(U_a → [U_n; U_d]) + ½ CE(U_n → [U_a; U_d]),  CE(Q → C) = mean_i (logsumexp_j S_ij − S_ii),  S = Q Cᵀ / τ
 *   ∂CE/∂S = (softmax(S) − I)/B, so ∂Q = G C / τ and ∂C = Gᵀ Q / τ;  then ∂z = (∂u − u (u·∂u)) / r.
 */
function infoNce(ops: Ops, za: Value, zn: Value, zd: Value, temperature: number): LossTerms {
  const [batch, dim] = za.shape;
  const normalize = (z: Value, hint: string) => {
    const r = ops.unary('Sqrt', ops.add(ops.reduceSum(ops.mul(z, z), [1], true), DISTANCE_EPSILON), {}, `${hint}_norm`);
    return { u: ops.div(z, r, `${hint}_unit`), r };
  };
  const a = normalize(za, 'anchor');
  const n = normalize(zn, 'neighbor');
  const d = normalize(zd, 'distant');
  // Candidate i is query i's positive: the identity in the first B columns.
  const targets = new Float32Array(batch * 2 * batch);
  for (let i = 0; i < batch; i++) targets[i * 2 * batch + i] = 1;
  const target = ops.constant('infonce_targets', targets, [batch, 2 * batch]);

  const contrast = (queries: Value, candidates: Value, hint: string) => {
    const logits = ops.mul(ops.matmul(queries, ops.transpose(candidates, [1, 0])), 1 / temperature, `${hint}_logits`);
    const logProbabilities = ops.unary('LogSoftmax', logits, { axis: 1 }, `${hint}_log_softmax`);
    const loss = ops.mul(ops.reduceSum(ops.mul(logProbabilities, target), [0, 1], false), -1 / batch, `${hint}_ce`);
    // ½ for the two directions, 1/B for the mean, 1/τ for the logits' scale.
    const dLogits = ops.mul(ops.sub(ops.unary('Exp', logProbabilities), target), 0.5 / (batch * temperature));
    const [dFirst, dDistant] = ops.split(ops.matmul(ops.transpose(dLogits, [1, 0]), queries), [batch, batch], 0, `${hint}_d_candidates`);
    return { loss, dQueries: ops.matmul(dLogits, candidates), dFirst, dDistant };
  };
  const forward = contrast(a.u, ops.concat([n.u, d.u], 0), 'infonce_anchor');
  const backward = contrast(n.u, ops.concat([a.u, d.u], 0), 'infonce_neighbor');
  const loss = ops.mul(ops.add(forward.loss, backward.loss), 0.5, 'infonce');

  const throughUnit = ({ u, r }: { u: Value; r: Value }, du: Value) =>
    ops.div(ops.sub(du, ops.mul(u, ops.reduceSum(ops.mul(u, du), [1], true))), r);
  const dua = ops.add(forward.dQueries, backward.dFirst);
  const dun = ops.add(backward.dQueries, forward.dFirst);
  const dud = ops.add(forward.dDistant, backward.dDistant);
  if (dua.shape.join() !== [batch, dim].join()) throw new Error('internal: InfoNCE gradient shape');
  return { loss, dza: throughUnit(a, dua), dzn: throughUnit(n, dun), dzd: throughUnit(d, dud) };
}
