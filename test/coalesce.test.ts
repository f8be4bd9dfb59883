import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesceRanges, type ByteRange } from '../src/ingest/coalesce.ts';

/** Every input range lies inside the request it was assigned to, exactly once. */
function assertCovers(ranges: ByteRange[], merged: ReturnType<typeof coalesceRanges>): void {
  const seen = merged.flatMap((m) => m.members).sort((a, b) => a - b);
  assert.deepEqual(seen, ranges.map((_, i) => i));
  for (const m of merged) for (const i of m.members) assert.ok(m.start <= ranges[i].start && ranges[i].end <= m.end, `range ${i} inside its request`);
}

test('adjacent and nearby ranges share a request; distant ones do not', () => {
  const ranges = [{ start: 100, end: 200 }, { start: 0, end: 100 }, { start: 250, end: 300 }, { start: 1000, end: 1100 }];
  const merged = coalesceRanges(ranges, 50, 1 << 20);
  assert.deepEqual(merged, [{ start: 0, end: 300, members: [1, 0, 2] }, { start: 1000, end: 1100, members: [3] }]);
  assertCovers(ranges, merged);
});

test('overlapping and repeated ranges are fetched once', () => {
  const ranges = [{ start: 0, end: 500 }, { start: 100, end: 200 }, { start: 0, end: 500 }, { start: 450, end: 600 }];
  const merged = coalesceRanges(ranges, 0, 1 << 20);
  assert.equal(merged.length, 1);
  assert.deepEqual([merged[0].start, merged[0].end], [0, 600]);
  assertCovers(ranges, merged);
});

test('a request never grows past maxBytes, though a single range larger than that is kept whole', () => {
  const ranges = Array.from({ length: 10 }, (_, i) => ({ start: i * 100, end: i * 100 + 100 }));
  const merged = coalesceRanges([...ranges, { start: 5000, end: 9000 }], 1000, 350);
  assert.deepEqual(merged.map((m) => [m.start, m.end]), [[0, 300], [300, 600], [600, 900], [900, 1000], [5000, 9000]]);
  assertCovers([...ranges, { start: 5000, end: 9000 }], merged);
});

test('random ranges: each is covered by exactly one request within the limits', () => {
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let round = 0; round < 50; round++) {
    const ranges = Array.from({ length: 1 + rand(40) }, () => {
      const start = rand(100_000);
      return { start, end: start + 1 + rand(5000) };
    });
    const maxBytes = 4000 + rand(20_000);
    const merged = coalesceRanges(ranges, rand(3000), maxBytes);
    assertCovers(ranges, merged);
    for (const m of merged) assert.ok(m.members.length === 1 || m.end - m.start <= maxBytes, 'within maxBytes');
    for (let k = 1; k < merged.length; k++) assert.ok(merged[k - 1].start <= merged[k].start, 'requests in file order');
  }
});

test('no ranges, no requests', () => {
  assert.deepEqual(coalesceRanges([], 10, 100), []);
});
