import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withWatchdog } from '../src/train/watchdog.ts';

test('a wait that never ends fails with a line saying what it waited for', async () => {
  const never = new Promise<never>(() => {});
  const keepAlive = setInterval(() => {}, 1000); // the watchdog's own timer is unref'd
  try {
    await assert.rejects(withWatchdog(never, 0.05, 'the ONNX Runtime session build', () => '3 of 4 ready'), {
      name: 'WatchdogError',
      message: /^waited 0.05 s for the ONNX Runtime session build \(3 of 4 ready\); it never finished$/,
    });
  } finally {
    clearInterval(keepAlive);
  }
});

test('a wait that ends passes its value or its error through', async () => {
  assert.equal(await withWatchdog(Promise.resolve(7), 10, 'x'), 7);
  await assert.rejects(withWatchdog(Promise.reject(new Error('own')), 10, 'x'), /^Error: own$/);
});
