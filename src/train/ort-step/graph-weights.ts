import type { FlatLayout } from './param-layout.ts';
import type { Ops, Value } from './ops.ts';

/**
 * The trainable weights inside the step graph (sliced from the flat `params` input, in tfjs layout) with their
 * ONNX-layout views, and the gradient of each, collected in tfjs layout so the optimiser and the ParamStore agree.
 */
export class GraphWeights {
  private readonly pieces = new Map<string, Value>();
  private readonly derived = new Map<string, Value>();
  private readonly grads = new Map<string, Value>();

  constructor(private readonly ops: Ops, private readonly layout: FlatLayout, flat: Value) {
    const parts = ops.split(flat, layout.entries.map((e) => e.size), 0, 'weights');
    layout.entries.forEach((e, i) => this.pieces.set(e.name, parts[i]));
  }

  /** A weight as the ParamStore shapes it. */
  tfjs(name: string): Value {
    return this.cached(`tfjs:${name}`, () => {
      const piece = this.pieces.get(name);
      if (!piece) throw new Error(`the step graph has no trainable weight "${name}"`);
      return this.ops.reshape(piece, this.layout.entry(name).shape, name);
    });
  }

  /** Per-channel vector shaped to broadcast over NCHW: [1, C, 1, 1]. */
  channelwise(name: string): Value {
    return this.cached(`nchw:${name}`, () => this.ops.reshape(this.tfjs(name), [1, this.layout.entry(name).size, 1, 1]));
  }

  /** tfjs conv kernel [k, k, in, out] → ONNX [out, in, k, k]. */
  convKernel(name: string): Value {
    return this.cached(`conv:${name}`, () => this.ops.transpose(this.tfjs(name), [3, 2, 0, 1], `${name}.oihw`));
  }

  /** The transposed 1x1 kernel [in, out, 1, 1]: the input gradient of a 1x1 conv is a 1x1 conv with it. */
  convKernelTransposed(name: string): Value {
    return this.cached(`convT:${name}`, () => this.ops.transpose(this.tfjs(name), [2, 3, 0, 1], `${name}.iohw`));
  }

  /** tfjs depthwise kernel [k, k, C, 1] → ONNX grouped-conv weight [C, 1, k, k]. */
  depthwiseKernel(name: string): Value {
    return this.cached(`dw:${name}`, () => this.ops.transpose(this.tfjs(name), [2, 3, 0, 1], `${name}.c1hw`));
  }

  /** The depthwise kernel rotated 180°: a stride-1 depthwise conv's input gradient is a conv with it. */
  flippedDepthwiseKernel(name: string): Value {
    return this.cached(`dwflip:${name}`, () => {
      const kernel = this.depthwiseKernel(name);
      const k = kernel.shape[2];
      // Negative steps walk from the last tap to the first; an end of -(k + 1) clamps to "before index 0".
      const inputs = [kernel.name, this.ops.ints([-1, -1]), this.ops.ints([-(k + 1), -(k + 1)]), this.ops.ints([2, 3]), this.ops.ints([-1, -1])];
      return this.ops.op('Slice', inputs, kernel.shape, {}, `${name}.flipped`);
    });
  }

  /** Records the gradient of a weight (tfjs layout, any shape with its element count); each weight gets exactly one. */
  setGradient(name: string, grad: Value): void {
    if (this.grads.has(name)) throw new Error(`weight "${name}" received two gradients in one step`);
    if (grad.shape.reduce((p, d) => p * d, 1) !== this.layout.entry(name).size) throw new Error(`gradient of "${name}" has shape [${grad.shape}]`);
    this.grads.set(name, grad);
  }

  /** Every gradient, flattened and concatenated in layout order. */
  flatGradient(): Value {
    const parts = this.layout.entries.map(({ name, size }) => {
      const grad = this.grads.get(name);
      if (!grad) throw new Error(`the step graph computed no gradient for "${name}"`);
      return this.ops.reshape(grad, [size]);
    });
    return this.ops.concat(parts, 0, 'flat_gradient');
  }

  private cached(key: string, make: () => Value): Value {
    let value = this.derived.get(key);
    if (!value) {
      value = make();
      this.derived.set(key, value);
    }
    return value;
  }
}
