import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { RngState } from '../sampling/index.ts';
import { MODEL_FILES } from './model-dir.ts';
import { readTensorFile, writeTensorFile, type NamedTensor } from './tensor-file.ts';

/** The state a run needs to continue exactly where it stopped. */
export interface TrainingState {
  step: number;
  /** The sampler's generator after the last batch trained on. */
  rngState: RngState;
  losses: number[];
  /** Wall time spent so far, over all resumed segments. */
  seconds: number;
}

export interface Checkpoint {
  state: TrainingState;
  weights: Map<string, NamedTensor>;
  adam: { step: number; tensors: Map<string, NamedTensor> };
}

interface CheckpointHeader extends TrainingState {
  format: 'tilevec-checkpoint/1';
  /** Everything that must match for a resume to continue the same run. */
  fingerprint: Record<string, unknown>;
  adamStep: number;
}

/** The paths (a.b.c) where two JSON values differ, so an error names `backbone.dim` rather than a whole object. */
function leafDifferences(was: unknown, now: unknown, path = ''): { path: string; was: unknown; now: unknown }[] {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(was) && isObject(now)) {
    return [...new Set([...Object.keys(was), ...Object.keys(now)])].flatMap((k) => leafDifferences(was[k], now[k], path ? `${path}.${k}` : k));
  }
  return JSON.stringify(was) === JSON.stringify(now) ? [] : [{ path, was, now }];
}

export function checkpointPath(dir: string): string {
  return join(dir, MODEL_FILES.checkpoint);
}

/** Weights, optimiser moments and training state in one file, written atomically (temp file, then rename). */
export function saveCheckpoint(dir: string, checkpoint: Checkpoint, fingerprint: Record<string, unknown>): void {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, t] of checkpoint.weights) tensors.set(`w/${name}`, t);
  for (const [name, t] of checkpoint.adam.tensors) tensors.set(`adam/${name}`, t);
  writeTensorFile<CheckpointHeader>(checkpointPath(dir), { format: 'tilevec-checkpoint/1', fingerprint, adamStep: checkpoint.adam.step, ...checkpoint.state }, tensors);
}

/** Reads a checkpoint; one from another configuration is a clear error naming what differs. */
export function loadCheckpoint(dir: string, fingerprint: Record<string, unknown>): Checkpoint {
  const path = checkpointPath(dir);
  if (!existsSync(path)) throw new UserError(`nothing to resume in ${dir}: it has no ${MODEL_FILES.checkpoint}`);
  const { header, tensors } = readTensorFile<CheckpointHeader>(path);
  if (header.format !== 'tilevec-checkpoint/1') throw new UserError(`${path} is not a tilevec training checkpoint`);
  const differences = leafDifferences(header.fingerprint, fingerprint);
  if (differences.length > 0) {
    const shown = differences.map(({ path: key, was, now }) => `${key}: checkpoint ${JSON.stringify(was)}, now ${JSON.stringify(now)}`);
    throw new UserError(`cannot resume from ${path}: it comes from an incompatible configuration (${shown.join('; ')}); rerun with the original flags or start a new --out`);
  }
  const byPrefix = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return {
    state: { step: header.step, rngState: header.rngState, losses: header.losses, seconds: header.seconds },
    weights: byPrefix('w/'),
    adam: { step: header.adamStep, tensors: byPrefix('adam/') },
  };
}
