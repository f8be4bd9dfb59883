/**
 * ONNX graphs written from TypeScript: a small graph builder over the ONNX protobuf schema, and the RevBiFPN
 * inference graph (BatchNorm folded into convs) that embed runs. train's ORT step builds its training graph with
 * the same builder and stem; both stages depend on this folder and on src/model, not on each other.
 */
export { GraphBuilder, type AttributeValue, type Dim } from './graph-builder.ts';
export { decodeModel, encodeModel } from './proto.ts';
export { exportBackboneOnnx, emitStem, EXPORT_OPSET, ONNX_INPUT, ONNX_OUTPUT, TEST_TIME_AUGMENTATIONS, type OnnxExportOptions, type TestTimeAugmentation } from './export-backbone.ts';
