/** A byte range [start, end) of a remote file. */
export interface ByteRange {
  start: number;
  end: number;
}

/** One request covering several wanted ranges, with each range's index in the input. */
export interface MergedRange extends ByteRange {
  members: number[];
}

/**
 * Groups byte ranges into as few requests as reasonable: ranges that overlap or lie within `maxGap` bytes of each
 * other share one request, up to `maxBytes` per request. A COG stores a window's blocks row after row, so the
 * blocks of one read are mostly adjacent; fetching the small gaps between them costs less than a round trip.
 */
export function coalesceRanges(ranges: readonly ByteRange[], maxGap: number, maxBytes: number): MergedRange[] {
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[a].start - ranges[b].start);
  const merged: MergedRange[] = [];
  for (const i of order) {
    const { start, end } = ranges[i];
    const last = merged.at(-1);
    if (last && start <= last.end + maxGap && Math.max(end, last.end) - last.start <= maxBytes) {
      last.end = Math.max(last.end, end);
      last.members.push(i);
    } else {
      merged.push({ start, end, members: [i] });
    }
  }
  return merged;
}
