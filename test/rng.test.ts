import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fnv1a32, shuffled, uniform } from '../src/rng.ts';

test('FNV-1a matches the published 32-bit test vectors', () => {
  // From the FNV reference test suite (Fowler, Noll, Vo): the offset basis, "a" and "foobar".
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
});

test('uniform floats are reproducible per seed, in [0, 1), and shuffles are permutations', () => {
  const [a, b, c] = [uniform(5), uniform(5), uniform(6)];
  const xs = Array.from({ length: 10_000 }, a);
  assert.deepEqual(Array.from({ length: 10_000 }, b), xs);
  assert.notDeepEqual(Array.from({ length: 10 }, c), xs.slice(0, 10));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  const items = Array.from({ length: 50 }, (_, i) => i);
  const mixed = shuffled(items, uniform(1));
  assert.notDeepEqual(mixed, items);
  assert.deepEqual([...mixed].sort((p, q) => p - q), items);
});
