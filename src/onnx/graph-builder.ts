import { AttributeType, DataType, encodeModel } from './proto.ts';

export type AttributeValue = number | number[] | string | { floats: number[] } | { int: number } | { float: number };

interface NodeRecord {
  opType: string;
  input: string[];
  output: string[];
  name: string;
  attribute: Record<string, unknown>[];
}

/** A dimension: a fixed size, or a symbolic name such as 'batch'. */
export type Dim = number | string;

function attribute(name: string, value: AttributeValue): Record<string, unknown> {
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: Buffer.from(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  if ('int' in value) return { name, type: AttributeType.INT, i: value.int };
  return { name, type: AttributeType.FLOAT, f: value.float };
}

function valueInfo(name: string, dims: Dim[]) {
  return {
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/**
 * Builds an ONNX graph node by node. Values get unique names from the prefix given; weights become initializers.
 * Integers in attributes are ints, other numbers floats (`{ float: 1 }` forces a float).
 */
export class GraphBuilder {
  private readonly nodes: NodeRecord[] = [];
  private readonly initializers: Record<string, unknown>[] = [];
  private readonly inputs: ReturnType<typeof valueInfo>[] = [];
  private readonly outputs: ReturnType<typeof valueInfo>[] = [];
  private readonly used = new Set<string>();
  /** Last suffix handed out per hint: names are never released, so the search can resume there (large graphs). */
  private readonly lastSuffix = new Map<string, number>();

  /** A fresh value name based on `hint`. */
  name(hint: string): string {
    let name = hint;
    let i = this.lastSuffix.get(hint) ?? 0;
    while (this.used.has(name)) name = `${hint}_${++i}`;
    this.lastSuffix.set(hint, i);
    this.used.add(name);
    return name;
  }

  input(name: string, dims: Dim[]): string {
    this.used.add(name);
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  output(name: string, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, dims));
  }

  /** A float32 constant stored in the model. */
  weight(hint: string, data: Float32Array, dims: number[]): string {
    const name = this.name(hint);
    this.initializers.push({ name, dataType: DataType.FLOAT, dims, rawData: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /** An int64 constant (shapes, axes, pads). */
  ints(hint: string, values: number[]): string {
    const name = this.name(hint);
    this.initializers.push({ name, dataType: DataType.INT64, dims: [values.length], int64Data: values });
    return name;
  }

  node(opType: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, hint = opType.toLowerCase(), outputs = 1): string[] {
    const names = Array.from({ length: outputs }, (_, i) => this.name(outputs === 1 ? hint : `${hint}_out${i}`));
    this.nodes.push({
      opType,
      input: inputs,
      output: names,
      name: this.name(`node_${hint}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return names;
  }

  /** One-output node: the common case. */
  op(opType: string, inputs: string[], attrs: Record<string, AttributeValue> = {}, hint?: string): string {
    return this.node(opType, inputs, attrs, hint)[0];
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  opTypes(): Set<string> {
    return new Set(this.nodes.map((n) => n.opType));
  }

  encode(opts: { opset: number; graphName: string; metadata?: Record<string, string>; producerVersion?: string; doc?: string }): Uint8Array {
    return encodeModel({
      irVersion: 8,
      producerName: 'tilevec',
      producerVersion: opts.producerVersion ?? '0',
      docString: opts.doc ?? '',
      opsetImport: [{ domain: '', version: opts.opset }],
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: { name: opts.graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
  }
}
