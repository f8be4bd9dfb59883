import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionCache } from '../src/queue/session-cache.ts';

/** A stand-in for an ONNX Runtime session that records its release and refuses use after it. */
class FakeSession {
  released = false;
  constructor(readonly version: string) {}
  use(): string {
    if (this.released) throw new Error(`session ${this.version} used after release`);
    return this.version;
  }
  async release(): Promise<void> {
    this.released = true;
  }
}

function cache() {
  const state = { version: 'v1', loads: 0, fail: false };
  const sessions = new SessionCache<FakeSession>(async () => state.version, async () => {
    state.loads++;
    if (state.fail) throw new Error('cannot load');
    return new FakeSession(state.version);
  });
  return { state, sessions };
}

test('a retrained model loads anew, and the old session stays usable until its last user lets go', async () => {
  const { state, sessions } = cache();
  const a = await sessions.acquire('m');
  const b = await sessions.acquire('m');
  assert.equal(a.value, b.value, 'slots share one session');
  assert.equal(state.loads, 1);
  state.version = 'v2';
  const c = await sessions.acquire('m');
  assert.equal(c.value.use(), 'v2');
  // The worker's old cache released v1 here while slots a and b were still embedding with it.
  assert.equal(a.value.use(), 'v1');
  a.release();
  a.release(); // a second release of the same lease counts once
  assert.equal(b.value.use(), 'v1');
  b.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(a.value.released, true, 'released once unused');
  assert.equal(c.value.released, false);
  c.release();
  assert.equal(c.value.released, false, 'the current session stays loaded between units');
  await sessions.close();
  assert.equal(c.value.released, true);
});

test('concurrent acquires share one load; a failed load is retried, not cached', async () => {
  const { state, sessions } = cache();
  state.fail = true;
  const tries = await Promise.allSettled([sessions.acquire('m'), sessions.acquire('m')]);
  assert.deepEqual(tries.map((t) => t.status), ['rejected', 'rejected']);
  assert.equal(state.loads, 1);
  state.fail = false;
  const ok = await sessions.acquire('m');
  assert.equal(ok.value.use(), 'v1');
  assert.equal(state.loads, 2);
  ok.release();
  await sessions.close();
  assert.equal(ok.value.released, true);
});
