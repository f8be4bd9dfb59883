/** The majority class of some samples, and how pure the sample set is. */
export interface MajorityLabel {
  classId: number;
  /** Share of the valid samples that carry `classId`. */
  purity: number;
  /** Valid samples counted. */
  validCount: number;
  /** All samples looked at, valid or not. */
  sampleCount: number;
}

/**
 * The most frequent valid value among `samples` (ties go to the lower class id, so results are deterministic), or
 * null when no sample is valid. `isValid` drops nodata and values outside the label set's classes.
 */
export function majorityLabel(samples: ArrayLike<number>, isValid: (value: number) => boolean): MajorityLabel | null {
  const counts = new Map<number, number>();
  let validCount = 0;
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i];
    if (!isValid(v)) continue;
    counts.set(v, (counts.get(v) ?? 0) + 1);
    validCount++;
  }
  if (validCount === 0) return null;
  let classId = 0;
  let best = -1;
  for (const [value, count] of counts) {
    if (count > best || (count === best && value < classId)) {
      classId = value;
      best = count;
    }
  }
  return { classId, purity: best / validCount, validCount, sampleCount: samples.length };
}

export interface LabelThresholds {
  /** Least share of the majority class among valid samples (default 0.5). */
  minPurity?: number;
  /** Least share of valid samples in the footprint (default 0.5): a sliver of labels does not label a tile. */
  minValidFraction?: number;
}

/** Whether a majority label is clean enough to label its tile. */
export function acceptLabel(label: MajorityLabel | null, t: LabelThresholds = {}): label is MajorityLabel {
  return label !== null && label.purity >= (t.minPurity ?? 0.5) && label.validCount / label.sampleCount >= (t.minValidFraction ?? 0.5);
}
