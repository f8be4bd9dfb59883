import type { AttributeValue, GraphBuilder } from '../../onnx/index.ts';

/** A graph value with its static shape (the step graph is built for one batch size, so every shape is known). */
export interface Value {
  name: string;
  shape: number[];
}

function broadcastShape(a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`cannot broadcast [${a}] with [${b}]`);
    return Math.max(da, db);
  });
}

export const sizeOf = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

/**
 * 2 × the multiply-adds of a Conv, ConvTranspose, MatMul or Einsum (the step's only ops of more than linear cost);
 * 0 for anything else. Conv: every output element sums (in channels / group) × kernel taps; ConvTranspose: every
 * input element scatters into (out channels / group) × taps; MatMul: K per output; Einsum: every term of the sum.
 */
function productFlops(type: string, inputs: Array<Value | string>, out: number[], attrs: Record<string, AttributeValue>): number {
  if (type !== 'Conv' && type !== 'ConvTranspose' && type !== 'MatMul' && type !== 'Einsum') return 0;
  const shapeOf = (i: number) => (typeof inputs[i] === 'string' ? undefined : (inputs[i] as Value | undefined)?.shape);
  const [x, w] = [shapeOf(0), shapeOf(1)];
  // Inputs given by name carry no shape: a product op must get Values, or its FLOPs would go uncounted.
  if (!x || !w) throw new Error(`internal: ${type} inputs without shapes; its FLOPs cannot be counted`);
  if (type === 'Conv') return 2 * sizeOf(out) * sizeOf(w.slice(1));
  if (type === 'ConvTranspose') return 2 * sizeOf(x) * sizeOf(w.slice(1));
  if (type === 'MatMul') return 2 * sizeOf(out) * x[x.length - 1];
  // Only 'nip,nop->io' (a 1x1 conv's weight gradient) is emitted: n·i·p·o terms.
  if (attrs.equation !== 'nip,nop->io') throw new Error(`internal: FLOPs of Einsum '${String(attrs.equation)}' are not counted`);
  return 2 * sizeOf(x) * w[1];
}

/**
 * Typed, shape-tracking helpers over a GraphBuilder: every emitter of the training step speaks in `Value`s, so
 * backward code can size its constants (interpolation matrices, transposed-conv padding) from the forward shapes.
 */
export class Ops {
  private readonly scalars = new Map<number, Value>();
  private readonly intConstants = new Map<string, string>();
  /** Multiply-adds × 2 of the graph's convolutions and matrix products so far: the step's FLOPs for bench:train. */
  flops = 0;

  constructor(readonly g: GraphBuilder) {}

  op(type: string, inputs: Array<Value | string>, shape: number[], attrs: Record<string, AttributeValue> = {}, hint?: string): Value {
    this.flops += productFlops(type, inputs, shape, attrs);
    return { name: this.g.op(type, inputs.map((v) => (typeof v === 'string' ? v : v.name)), attrs, hint), shape };
  }

  /** A float32 scalar constant, shared by every use of the same value. */
  scalar(value: number): Value {
    let constant = this.scalars.get(value);
    if (!constant) {
      constant = { name: this.g.weight('const', Float32Array.of(value), []), shape: [] };
      this.scalars.set(value, constant);
    }
    return constant;
  }

  constant(hint: string, data: Float32Array, shape: number[]): Value {
    return { name: this.g.weight(hint, data, shape), shape };
  }

  /** An int64 vector constant (axes, shapes, split sizes), shared by equal uses. */
  ints(values: number[]): string {
    const key = values.join(',');
    let name = this.intConstants.get(key);
    if (!name) {
      name = this.g.ints('ints', values);
      this.intConstants.set(key, name);
    }
    return name;
  }

  private binary(type: string, a: Value, b: Value | number, hint?: string): Value {
    const right = typeof b === 'number' ? this.scalar(b) : b;
    return this.op(type, [a, right], broadcastShape(a.shape, right.shape), {}, hint);
  }

  add(a: Value, b: Value | number, hint?: string): Value {
    return this.binary('Add', a, b, hint);
  }

  sub(a: Value, b: Value | number, hint?: string): Value {
    return this.binary('Sub', a, b, hint);
  }

  mul(a: Value, b: Value | number, hint?: string): Value {
    return this.binary('Mul', a, b, hint);
  }

  div(a: Value, b: Value | number, hint?: string): Value {
    return this.binary('Div', a, b, hint);
  }

  unary(type: string, x: Value, attrs: Record<string, AttributeValue> = {}, hint?: string): Value {
    return this.op(type, [x], x.shape, attrs, hint);
  }

  /** Sum of terms, one node however many (a single term is returned as is). */
  sum(terms: Value[], hint?: string): Value {
    if (terms.length === 1) return terms[0];
    return this.op('Sum', terms, terms.map((t) => t.shape).reduce(broadcastShape), {}, hint);
  }

  reduceSum(x: Value, axes: number[], keepDims: boolean, hint?: string): Value {
    return this.op('ReduceSum', [x, this.ints(axes)], this.reducedShape(x.shape, axes, keepDims), { keepdims: keepDims ? 1 : 0 }, hint);
  }

  /** Opset 17 ReduceMean takes its axes as an attribute. */
  reduceMean(x: Value, axes: number[], keepDims: boolean, hint?: string): Value {
    return this.op('ReduceMean', [x], this.reducedShape(x.shape, axes, keepDims), { axes, keepdims: keepDims ? 1 : 0 }, hint);
  }

  private reducedShape(shape: number[], axes: number[], keepDims: boolean): number[] {
    const reduced = new Set(axes.map((a) => (a < 0 ? a + shape.length : a)));
    return shape.flatMap((d, i) => (reduced.has(i) ? (keepDims ? [1] : []) : [d]));
  }

  reshape(x: Value, shape: number[], hint?: string): Value {
    if (sizeOf(shape) !== sizeOf(x.shape)) throw new Error(`cannot reshape [${x.shape}] to [${shape}]`);
    if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
    return this.op('Reshape', [x, this.ints(shape)], shape, {}, hint);
  }

  transpose(x: Value, perm: number[], hint?: string): Value {
    return this.op('Transpose', [x], perm.map((p) => x.shape[p]), { perm }, hint);
  }

  concat(parts: Value[], axis: number, hint?: string): Value {
    const shape = [...parts[0].shape];
    shape[axis] = parts.reduce((s, p) => s + p.shape[axis], 0);
    return this.op('Concat', parts, shape, { axis }, hint);
  }

  split(x: Value, sizes: number[], axis: number, hint = 'split'): Value[] {
    const names = this.g.node('Split', [x.name, this.ints(sizes)], { axis }, hint, sizes.length);
    return names.map((name, i) => ({ name, shape: x.shape.map((d, a) => (a === axis ? sizes[i] : d)) }));
  }

  matmul(a: Value, b: Value, hint?: string): Value {
    const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return this.op('MatMul', [a, b], [...batch, a.shape[a.shape.length - 2], b.shape[b.shape.length - 1]], {}, hint);
  }

  /** `a` where the boolean value `cond` holds, else `b`. */
  where(cond: string, a: Value, b: Value, hint?: string): Value {
    return this.op('Where', [cond, a, b], broadcastShape(a.shape, b.shape), {}, hint);
  }

  /** Comparisons return the boolean value's name: it only feeds Where and Cast. */
  less(a: Value, b: Value | number): string {
    return this.binary('Less', a, b).name;
  }

  greater(a: Value, b: Value | number): string {
    return this.binary('Greater', a, b).name;
  }
}
