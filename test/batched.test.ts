import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batched } from '../src/batched.ts';

test('calls in one turn of the event loop share one invocation, each getting its own result', async () => {
  const invocations: number[][] = [];
  const square = batched(async (xs: number[]) => {
    invocations.push(xs);
    return xs.map((x) => x * x);
  });
  assert.deepEqual(await Promise.all([1, 2, 3].map(square)), [1, 4, 9]);
  assert.deepEqual(await square(5), 25);
  assert.deepEqual(invocations, [[1, 2, 3], [5]]);
});

test('a full batch starts the next one, and each invocation stays within the limit', async () => {
  const sizes: number[] = [];
  const identity = batched(async (xs: number[]) => {
    sizes.push(xs.length);
    return xs;
  }, 4);
  const inputs = Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(await Promise.all(inputs.map(identity)), inputs);
  assert.deepEqual(sizes, [4, 4, 2]);
});

test('a failed invocation rejects every call in it, and only those', async () => {
  let calls = 0;
  const flaky = batched(async (xs: string[]) => {
    calls++;
    if (calls === 1) throw new Error('server went away');
    return xs.map((x) => x.toUpperCase());
  });
  const first = await Promise.allSettled(['a', 'b'].map(flaky));
  assert.deepEqual(first.map((r) => r.status), ['rejected', 'rejected']);
  assert.match(String((first[0] as PromiseRejectedResult).reason), /server went away/);
  assert.equal(await flaky('c'), 'C');
});

test('a synchronous throw is delivered as a rejection, not an uncaught exception', async () => {
  const broken = batched((): Promise<number[]> => {
    throw new TypeError('bad input');
  });
  await assert.rejects(broken(1), /bad input/);
});

test('a result that is a promise settles its own caller only', async () => {
  const load = batched(async (xs: number[]) => xs.map((x) => (x < 0 ? Promise.reject(new Error(`bad ${x}`)) : Promise.resolve(x * 10))));
  const results = await Promise.allSettled([1, -2, 3].map(load));
  assert.deepEqual(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), [10, 'bad -2', 30]);
});
