import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Store } from '../src/store/index.ts';
import { loadConfig } from '../src/config.ts';
import { JobQueue, jobsReport, runWorker } from '../src/queue/index.ts';
import { freshServerDb, serverSkip } from './helpers.ts';

describe('queue: permanent errors dead-letter at once, transient ones are retried (PostgreSQL)', async () => {
  const skip = await serverSkip();
  test('a redirect to a refused host and an HTTP 503', { skip }, async () => {
    // Loopback only: /redirect sends the ingest to a host off the allow-list, /busy answers 503.
    const http = createServer((req, res) => {
      if (req.url === '/redirect') res.writeHead(302, { Location: 'http://refused.invalid/x.tif' }).end();
      else res.writeHead(503).end();
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const { url, drop } = await freshServerDb();
    const store = await Store.open(url);
    try {
      const settings = loadConfig({}, {}).queue;
      const queue = await JobQueue.open(store, { ...settings, retryLimit: 5, retryDelaySeconds: 3600 });
      // As the service queues them: with its allow-list, which the worker's ingest enforces on every hop.
      const options = { force: false, allowHosts: ['127.0.0.1'] };
      await queue.enqueue([
        { kind: 'ingest', uri: `${base}/redirect`, options },
        { kind: 'ingest', uri: `${base}/busy`, options },
      ]);
      const stop = new AbortController();
      const seen: string[] = [];
      await runWorker(store, queue, {
        concurrency: 1, pollSeconds: 0.5, signal: stop.signal,
        onJob: ({ output }) => { seen.push((output as { error: string }).error); if (seen.length === 2) stop.abort(); },
      });
      await queue.close();
      const report = await jobsReport(store);
      assert.equal(report.deadTotal, 1, JSON.stringify(seen));
      assert.match(report.dead[0].error, /redirected to refused\.invalid/);
      const ingest = report.queues.find((q) => q.queue === 'tilevec-ingest')!;
      assert.equal(ingest.queued, 1, 'the 503 waits for its retry');
      assert.ok(seen.some((e) => /HTTP 503/.test(e)), JSON.stringify(seen));
    } finally {
      await store.close();
      await drop();
      http.close();
    }
  });
});
