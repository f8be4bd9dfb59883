import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { RngState } from '../sampling/index.ts';
import type { RevBiFPN } from './model/index.ts';
import type { Adam } from './adam.ts';
import { loadTensorsInto, MODEL_FILES, modelTensors } from './model-dir.ts';
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

interface CheckpointHeader extends TrainingState {
  format: 'tilevec-checkpoint/1';
  /** Everything that must match for a resume to continue the same run. */
  fingerprint: Record<string, unknown>;
  adamStep: number;
}

export function checkpointPath(dir: string): string {
  return join(dir, MODEL_FILES.checkpoint);
}

/** Weights, optimiser moments and training state in one file, written atomically (temp file, then rename). */
export function saveCheckpoint(dir: string, model: RevBiFPN, adam: Adam, state: TrainingState, fingerprint: Record<string, unknown>): void {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, t] of modelTensors(model)) tensors.set(`w/${name}`, t);
  for (const [name, t] of adam.state()) tensors.set(`adam/${name}`, t);
  writeTensorFile<CheckpointHeader>(checkpointPath(dir), { format: 'tilevec-checkpoint/1', fingerprint, adamStep: adam.step, ...state }, tensors);
}

/** Restores a checkpoint into `model` and `adam`; a checkpoint from another configuration is a clear error. */
export function loadCheckpoint(dir: string, model: RevBiFPN, adam: Adam, fingerprint: Record<string, unknown>): TrainingState {
  const path = checkpointPath(dir);
  if (!existsSync(path)) throw new UserError(`nothing to resume in ${dir}: it has no ${MODEL_FILES.checkpoint}`);
  const { header, tensors } = readTensorFile<CheckpointHeader>(path);
  if (header.format !== 'tilevec-checkpoint/1') throw new UserError(`${path} is not a tilevec training checkpoint`);
  const differences = Object.keys({ ...fingerprint, ...header.fingerprint }).filter(
    (key) => JSON.stringify(fingerprint[key]) !== JSON.stringify(header.fingerprint[key]),
  );
  if (differences.length > 0) {
    const shown = differences.map((k) => `${k}: checkpoint ${JSON.stringify(header.fingerprint[k])}, now ${JSON.stringify(fingerprint[k])}`);
    throw new UserError(`cannot resume from ${path}: it comes from an incompatible configuration (${shown.join('; ')}); rerun with the original flags or start a new --out`);
  }
  const byPrefix = (prefix: string) => new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  loadTensorsInto(model, byPrefix('w/'), path);
  adam.restore(header.adamStep, byPrefix('adam/'));
  return { step: header.step, rngState: header.rngState, losses: header.losses, seconds: header.seconds };
}
