/**
 * Serialisable description of a RevBiFPN backbone (Chiley et al., MLSys 2023).
 *
 * Everything that decides the architecture lives here as plain data, so that weight files,
 * exporters and alternative training engines can rebuild the exact same network from it.
 * Per-stream arrays are indexed by stream h = 0..3, where stream h runs at tile / (stemBlock * 2^h).
 */

/** Number of resolution streams; the first three layers each add one. */
export const STREAM_COUNT = 4;
/** Coarsest stream runs at tile / 32 with the default stem; tiles must divide evenly. */
export const TILE_MULTIPLE = 32;
/** Stem blocks on offer: space-to-depth x4 (the reference), x2, or x1: stream 0 at the tile's full resolution. */
export const STEM_BLOCKS = [1, 2, 4] as const;
/** Cards written before the stem block was configurable used x4. */
export const DEFAULT_STEM_BLOCK = 4;
/**
 * What the embedding pools: `coarsest`, the reference, pools the last level of the top-down merge; `pyramid` also adds
 * a projection of every finer level's pooled features, so fine-stream statistics reach the embedding directly.
 */
export const HEAD_POOLINGS = ['coarsest', 'pyramid'] as const;
export type HeadPooling = (typeof HEAD_POOLINGS)[number];
/** Cards written before the head pooling was configurable pooled the coarsest level. */
export const DEFAULT_HEAD_POOLING: HeadPooling = 'coarsest';
/**
 * What the training loss sees: `none`, the embedding itself; `mlp`, the embedding through a two-layer projector
 * (1x1 ConvBN + hard-swish, then a 1x1 conv back to dim) that only training uses, as SimCLR does: the loss's
 * invariances then shape the projector's output, and the embedding keeps more of what the tile holds.
 */
export const PROJECTORS = ['none', 'mlp'] as const;
export type Projector = (typeof PROJECTORS)[number];
/** Cards written before the projector was configurable trained on the embedding itself. */
export const DEFAULT_PROJECTOR: Projector = 'none';

export interface BackboneConfig {
  /** Preset name this config was resolved from (informational). */
  name: string;
  /** Square input tile edge in pixels; divisible by 32. */
  tileSize: number;
  /** Input band count B (any B >= 1). */
  bands: number;
  /** The stem folds stemBlock x stemBlock pixel blocks into channels (space-to-depth), so stream 0 runs at tile / stemBlock. */
  stemBlock: number;
  /** Stream widths [C0..C3] before band adaptation; multiples of 16 (C0) and even (all). */
  widths: number[];
  /** `ext`: layers after the three stream-adding ones. Silo count = 3 + extraLayers. */
  extraLayers: number;
  /** Reversible residual blocks per stream in every layer. */
  blocksPerLayer: number;
  /** MBConv expansion ratio per stream (used by blocks, by D maps from, and U maps to, the stream). */
  expandRatios: number[];
  /** Squeeze-excitation ratio per stream (0 disables SE). */
  seRatios: number[];
  /** Depthwise kernel of the reversible blocks per stream. */
  blockKernels: number[];
  /** Extra kernel size per source stream added to the resampling maps (reference `dwkp`). */
  kernelExtra: number[];
  /** Neck MBConv output width per stream. */
  neckWidths: number[];
  neckExpandRatios: number[];
  neckSeRatios: number[];
  /** Depthwise kernel of the neck and top-down merge MBConvs. */
  neckKernel: number;
  /** Embedding width produced by the final 1x1 conv + global average pool. */
  dim: number;
  headPooling: HeadPooling;
  /** What the training loss sees (the exported embedding never includes the projector). */
  projector: Projector;
  /** PyTorch convention: weight of the new batch statistic in the running average. */
  batchNormMomentum: number;
  batchNormEpsilon: number;
  /** Train with the reversible engine (true) or plain autodiff with stored activations (false). */
  reversible: boolean;
}

export type BackbonePresetName = 'tiny' | 's0';

const referenceStreams = {
  stemBlock: DEFAULT_STEM_BLOCK,
  headPooling: DEFAULT_HEAD_POOLING,
  projector: DEFAULT_PROJECTOR,
  expandRatios: [1, 1, 2, 2],
  seRatios: [0.25, 0.25, 0.125, 0],
  blockKernels: [3, 5, 5, 5],
  kernelExtra: [0, 0, 0, 2],
  neckExpandRatios: [1, 2, 2, 2],
  neckSeRatios: [0.25, 0.25, 0.125, 0.125],
  neckKernel: 5,
  blocksPerLayer: 2,
  batchNormMomentum: 0.1,
  batchNormEpsilon: 1e-3,
  reversible: true,
};

/** Reference width scaling: floor(w * c) to a multiple of 16. */
export function scaleWidths(base: readonly number[], multiplier: number): number[] {
  return base.map((c) => Math.floor((multiplier * c) / 16) * 16);
}

export const backboneConfigs: Readonly<Record<BackbonePresetName, Readonly<BackboneConfig>>> = {
  /** CPU-sized: about a quarter of S0's widths, for 32-64 px tiles. */
  tiny: {
    ...referenceStreams,
    name: 'tiny',
    tileSize: 64,
    bands: 4,
    widths: [16, 16, 32, 48],
    extraLayers: 1,
    neckWidths: [16, 16, 32, 80],
    dim: 128,
  },
  /** RevBiFPN-S0: w = 1, two extra layers (5 silos). */
  s0: {
    ...referenceStreams,
    name: 's0',
    tileSize: 224,
    bands: 3,
    widths: scaleWidths([48, 64, 80, 160], 1),
    extraLayers: 2,
    neckWidths: scaleWidths([48, 64, 128, 320], 1),
    dim: 128,
  },
};

/** A preset's stream and neck widths times `multiplier`, rounded as the reference rounds (scaleWidths). */
export function scaledWidths(preset: BackbonePresetName, multiplier: number): Pick<BackboneConfig, 'widths' | 'neckWidths'> {
  const { widths, neckWidths } = backboneConfigs[preset];
  return { widths: scaleWidths(widths, multiplier), neckWidths: scaleWidths(neckWidths, multiplier) };
}

/**
 * Resolves a preset name or a partial config (optionally naming its preset in `name`, default
 * `tiny`) plus overrides into a validated, independent config object.
 */
export function resolveBackboneConfig(
  base: BackbonePresetName | Partial<BackboneConfig> = 'tiny',
  overrides: Partial<BackboneConfig> = {},
): BackboneConfig {
  const partial = typeof base === 'string' ? { name: base } : base;
  const presetName = (partial.name ?? 'tiny') as BackbonePresetName;
  const preset = backboneConfigs[presetName];
  if (preset === undefined && typeof base === 'string') {
    throw new Error(`unknown backbone preset "${base}" (known: ${Object.keys(backboneConfigs).join(', ')})`);
  }
  const merged = structuredClone({ ...(preset ?? backboneConfigs.tiny), ...partial, ...overrides });
  validateBackboneConfig(merged);
  return merged;
}

/** Throws an Error naming every problem found; returns the config unchanged when valid. */
export function validateBackboneConfig(config: BackboneConfig): BackboneConfig {
  const problems: string[] = [];
  const isPositiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;
  const perStream = (key: keyof BackboneConfig, check: (v: number) => boolean, rule: string) => {
    const value = config[key];
    if (!Array.isArray(value) || value.length !== STREAM_COUNT) {
      problems.push(`${key} must be an array of ${STREAM_COUNT} numbers (one per stream)`);
    } else if (!value.every((v) => typeof v === 'number' && check(v))) {
      problems.push(`${key} entries must be ${rule}, got [${value.join(', ')}]`);
    }
  };

  if (!isPositiveInt(config.tileSize) || config.tileSize % TILE_MULTIPLE !== 0) {
    problems.push(`tileSize must be a positive multiple of ${TILE_MULTIPLE} (coarsest stream is tile/32), got ${config.tileSize}`);
  }
  if (!isPositiveInt(config.bands)) problems.push(`bands must be an integer >= 1, got ${config.bands}`);
  perStream('widths', (v) => Number.isInteger(v) && v >= 2 && v % 2 === 0, 'even integers >= 2 (blocks split channels in halves)');
  if (!(STEM_BLOCKS as readonly number[]).includes(config.stemBlock)) {
    problems.push(`stemBlock must be one of ${STEM_BLOCKS.join(', ')}, got ${config.stemBlock}`);
  } else if (Array.isArray(config.widths) && config.widths[0] % (config.stemBlock * config.stemBlock) !== 0) {
    const cells = config.stemBlock * config.stemBlock;
    problems.push(`widths[0] must be a multiple of ${cells} (space-to-depth x${config.stemBlock} of repeated bands), got ${config.widths[0]}`);
  }
  if (!Number.isInteger(config.extraLayers) || config.extraLayers < 0) {
    problems.push(`extraLayers must be an integer >= 0, got ${config.extraLayers}`);
  }
  if (!isPositiveInt(config.blocksPerLayer)) problems.push(`blocksPerLayer must be an integer >= 1, got ${config.blocksPerLayer}`);
  perStream('expandRatios', (v) => v >= 1, 'numbers >= 1');
  perStream('seRatios', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  perStream('blockKernels', (v) => Number.isInteger(v) && v >= 1 && v % 2 === 1, 'odd integers');
  perStream('kernelExtra', (v) => Number.isInteger(v) && v >= 0 && v % 2 === 0, 'even integers >= 0 (kernels stay odd)');
  perStream('neckWidths', (v) => Number.isInteger(v) && v >= 1, 'integers >= 1');
  perStream('neckExpandRatios', (v) => v >= 1, 'numbers >= 1');
  perStream('neckSeRatios', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  if (!isPositiveInt(config.neckKernel) || config.neckKernel % 2 !== 1) problems.push(`neckKernel must be an odd integer, got ${config.neckKernel}`);
  if (!isPositiveInt(config.dim)) problems.push(`dim must be an integer >= 1, got ${config.dim}`);
  if (!(HEAD_POOLINGS as readonly string[]).includes(config.headPooling)) {
    problems.push(`headPooling must be one of ${HEAD_POOLINGS.join(', ')}, got ${config.headPooling}`);
  }
  if (!(PROJECTORS as readonly string[]).includes(config.projector)) {
    problems.push(`projector must be one of ${PROJECTORS.join(', ')}, got ${config.projector}`);
  }
  if (!(config.batchNormMomentum > 0 && config.batchNormMomentum <= 1)) {
    problems.push(`batchNormMomentum must be in (0, 1], got ${config.batchNormMomentum}`);
  }
  if (!(config.batchNormEpsilon > 0)) problems.push(`batchNormEpsilon must be > 0, got ${config.batchNormEpsilon}`);
  if (typeof config.reversible !== 'boolean') problems.push(`reversible must be a boolean, got ${config.reversible}`);

  if (problems.length > 0) {
    throw new Error(`invalid backbone config "${config.name}":\n  - ${problems.join('\n  - ')}`);
  }
  return config;
}

/** Silo count: three stream-adding layers plus the extra ones. */
export function siloCount(config: BackboneConfig): number {
  return STREAM_COUNT - 1 + config.extraLayers;
}

/**
 * Stream widths after band adaptation. The stem has no convolution, so stream 0 must hold
 * every band at least once after space-to-depth: C0 = s² * max(C0 / s², B) for stem block s.
 */
export function streamWidths(config: BackboneConfig): number[] {
  const stemChannels = stemRepeatedChannels(config);
  return [stemChannels * config.stemBlock * config.stemBlock, ...config.widths.slice(1)];
}

/** Channels after repeating bands, before space-to-depth; even at stem block 1, since blocks split channels in halves. */
export function stemRepeatedChannels(config: BackboneConfig): number {
  const channels = Math.max(config.widths[0] / (config.stemBlock * config.stemBlock), config.bands);
  return config.stemBlock === 1 ? channels + (channels % 2) : channels;
}

/** Spatial edge of stream h. */
export function streamSize(config: BackboneConfig, h: number): number {
  return config.tileSize / (config.stemBlock * 2 ** h);
}
