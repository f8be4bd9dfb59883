/** The embedding stage: ONNX export, embedding the catalog with ONNX Runtime, and exports of the vectors. */
export { embed, embedRasterTiles, checkRasterFitsModel, loadOutgrowsIndex, readBatch, type EmbedOptions, type EmbedProgress, type EmbedSummary } from './embed.ts';
export { resolveModel, exportModelOnnx, ensureModelOnnx, onnxMetadata, readOnnx, type ResolvedModel } from './model-ref.ts';
export { embedTiles, type EmbedTilesOptions } from './embed-tiles.ts';
export { EmbeddingSession, type EmbeddingModelInfo } from './session.ts';
export { exportEmbeddings, encodeGeoParquet, embeddingRaster, embeddingFileNames, embeddingBandName, polygonWkb, type ExportFormat, type ExportSummary } from './export.ts';
export { exportBackboneOnnx, EXPORT_OPSET, ONNX_INPUT, ONNX_OUTPUT } from '../onnx/index.ts';
export { ChipEmbedder, type ChipEmbedding } from './chip.ts';
