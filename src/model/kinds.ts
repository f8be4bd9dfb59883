import type { BilinearUpsample, MBConv, Sequential } from './layers.ts';
import type { ReversibleBlock, RevSilo } from './reversible.ts';

/** The layers a RevSilo's D and U maps are built from. */
export type SiloMapLayer = MBConv | BilinearUpsample | Sequential;

/** The units of the reversible body after the stem. */
export type BodyUnit = ReversibleBlock | RevSilo;

/**
 * One handler per kind of a layer union, keyed by className. The tfjs forward is each class's own `call`; the
 * ONNX export and the ORT step's gradients are visitors of this type, so a kind added to a union fails to compile
 * until every visitor handles it, instead of failing at run time in whichever path was missed.
 */
export type LayerVisitor<U extends { className: string }, R> = { [K in U['className']]: (layer: Extract<U, { className: K }>) => R };

export function visitLayer<U extends { className: string }, R>(layer: U, visitor: LayerVisitor<U, R>): R {
  const handler = (visitor as unknown as Record<string, ((l: U) => R) | undefined>)[layer.className];
  // Unreachable while the types hold; a layer built around them (a cast, a plain object) still gets a clear error.
  if (!handler) throw new Error(`no handler for layer kind ${layer.className}`);
  return handler(layer);
}
