/**
 * Crafted hostile GeoTIFFs, written here at test time, through the real CLI: decompression bombs, blocks that share
 * one stream, sparse images far larger than their file, and a predictor that does not fit the samples. Each must fail
 * with one line naming what is wrong, under 30 s and 1 GB of peak RSS (measured by /usr/bin/time -v), and leave
 * no rows behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { chipMaxSide } from '../src/embed/chip.ts';
import { openRaster } from '../src/ingest/raster.ts';
import { hostAllowed, openSource } from '../src/ingest/source.ts';
import { Store } from '../src/store/index.ts';
import { CLI, ROOT, lzwBomb, tempDir } from './helpers.ts';
import { craft, DEFLATE, LCC_WITHOUT_PARALLEL, LZW, WGS84_KEYS, zeros, type Crafted } from './crafted-tiff.ts';


const georeferenced = (geo: Crafted['geo']): Crafted => ({ width: 16, height: 16, rowsPerStrip: 16, compression: DEFLATE, streams: [zeros(256)], strips: [0], geo });

const CASES: { name: string; file: Crafted; error: RegExp; allowUngeoreferenced?: false }[] = [
  {
    name: 'a ModelPixelScale of 1e300 degrees',
    file: georeferenced({ scale: [1e300, 1e300], tiepoint: [10, 50], keys: WGS84_KEYS }),
    error: /coordinates outside WGS84 .*--allow-ungeoreferenced/, allowUngeoreferenced: false,
  },
  {
    name: 'longitude 1000, latitude 500',
    file: georeferenced({ scale: [0.001, 0.001], tiepoint: [1000, 500], keys: WGS84_KEYS }),
    error: /coordinates outside WGS84/, allowUngeoreferenced: false,
  },
  {
    name: 'a user-defined Lambert conformal conic without its standard parallel',
    file: georeferenced({ scale: [30, 30], tiepoint: [500000, 4000000], keys: LCC_WITHOUT_PARALLEL }),
    error: /corrupt user-defined CRS: ProjStdParallel1GeoKey is missing/, allowUngeoreferenced: false,
  },
  {
    name: 'a 512x512 strip whose DEFLATE stream inflates to 256 MiB',
    file: { width: 512, height: 512, rowsPerStrip: 512, compression: DEFLATE, streams: [zeros(256 * 2 ** 20)], strips: [0] },
    error: /corrupt block 0 at byte \d+: the DEFLATE stream inflates past the block's 262144 bytes/,
  },
  {
    name: 'a 64x64 strip storing 256 KB, far more than it can need',
    file: { width: 64, height: 64, rowsPerStrip: 64, compression: DEFLATE, streams: [zeros(256 * 2 ** 20)], strips: [0] },
    error: /block 0 stores \d+ bytes, more than its 4096 decoded bytes can need/,
  },
  {
    name: 'a 64x64 strip whose LZW stream decodes to 8 MiB',
    file: { width: 64, height: 64, rowsPerStrip: 64, compression: LZW, streams: [lzwBomb(3800)], strips: [0] },
    error: /corrupt block 0 at byte \d+: the LZW stream decodes past the block's 4096 bytes/,
  },
  {
    name: '1025 strips of a 65536 x 65600 image pointing at one 4 KB stream',
    file: { width: 65536, height: 65600, rowsPerStrip: 64, compression: DEFLATE, streams: [zeros(4 * 2 ** 20)], strips: new Array(1025).fill(0) },
    error: /would decode to 4100 MiB from a \d+-byte file/,
  },
  {
    name: 'sixteen strips sharing one stream',
    file: { width: 256, height: 256, rowsPerStrip: 16, compression: DEFLATE, streams: [zeros(4096)], strips: new Array(16).fill(0) },
    error: /blocks 0 and 1 share bytes/,
  },
  {
    name: 'a 16384 x 16384 image of sparse strips (262,144 tiles of 32 px) in a 1 KB file',
    file: { width: 16384, height: 16384, rowsPerStrip: 256, compression: DEFLATE, streams: [], strips: new Array(64).fill(-1) },
    error: /64 blocks would decode to 256 MiB from a \d+-byte file/,
  },
  {
    name: 'floating-point predictor 3 on 8-bit integer samples',
    file: { width: 16, height: 16, rowsPerStrip: 16, compression: DEFLATE, predictor: 3, streams: [zeros(256)], strips: [0] },
    error: /floating-point predictor 3 on uint8 samples/,
  },
];

const RSS_ABOVE_BASELINE_KB = 1024 * 1024;
const TIME_LIMIT_S = 30;

/** The CLI's ingest of `path` under /usr/bin/time: its result, wall time and peak RSS. */
function timedIngest(path: string, db: string, allowUngeoreferenced = true, env: NodeJS.ProcessEnv = {}) {
  const started = performance.now();
  const run = spawnSync('/usr/bin/time', ['-v', process.execPath, CLI, 'ingest', path, ...(allowUngeoreferenced ? ['--allow-ungeoreferenced'] : [])], {
    cwd: ROOT, encoding: 'utf8', timeout: TIME_LIMIT_S * 1000, env: { ...process.env, TILEVEC_DB: db, TILEVEC_LOG_LEVEL: 'silent', ...env },
  });
  const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(run.stderr)?.[1]);
  return { run, seconds: (performance.now() - started) / 1000, peakKb };
}

describe('hostile GeoTIFFs through the CLI', () => {
  const tmp = tempDir();
  const db = join(tmp.path, 'db');
  after(tmp.cleanup);
  let baselineKb = 0;

  test('baseline: a benign 512x512 DEFLATE raster ingests', () => {
    const path = join(tmp.path, 'benign.tif');
    writeFileSync(path, craft({ width: 512, height: 512, rowsPerStrip: 512, compression: DEFLATE, streams: [zeros(512 * 512)], strips: [0] }));
    const { run, seconds, peakKb } = timedIngest(path, join(tmp.path, 'baseline-db'));
    assert.equal(run.status, 0, run.stderr);
    baselineKb = peakKb;
    process.stdout.write(`# baseline: ${seconds.toFixed(1)} s, peak RSS ${(peakKb / 1024).toFixed(0)} MiB\n`);
  });

  for (const [i, c] of CASES.entries()) {
    test(c.name, () => {
      const path = join(tmp.path, `hostile-${i}.tif`);
      writeFileSync(path, craft(c.file));
      const { run, seconds, peakKb } = timedIngest(path, db, c.allowUngeoreferenced);
      const lines = run.stderr.split('\n').filter((l) => l.startsWith('tilevec:'));
      assert.notEqual(run.status, 0, run.stdout);
      assert.ok(lines.length === 2 && c.error.test(lines[0]) && lines[0].includes(path), run.stderr);
      assert.ok(seconds < TIME_LIMIT_S, `${seconds.toFixed(1)} s`);
      assert.ok(baselineKb > 0 && peakKb - baselineKb < RSS_ABOVE_BASELINE_KB, `peak RSS ${peakKb} kB, baseline ${baselineKb} kB`);
      process.stdout.write(`# ${c.name}: ${seconds.toFixed(1)} s, peak RSS ${(peakKb / 1024).toFixed(0)} MiB\n`);
    });
  }

  test('with --allow-ungeoreferenced, coordinates out of range are ingested in pixel space', async () => {
    const path = join(tmp.path, 'far-away.tif');
    writeFileSync(path, craft(georeferenced({ scale: [1e300, 1e300], tiepoint: [10, 50], keys: WGS84_KEYS })));
    const otherDb = join(tmp.path, 'ungeoreferenced-db');
    const { run } = timedIngest(path, otherDb);
    assert.equal(run.status, 0, run.stderr);
    const store = await Store.open(otherDb);
    try {
      const [raster] = await store.listRasters();
      assert.equal(raster.georeferenced, false);
      assert.equal(raster.epsg, null);
      assert.deepEqual(raster.footprint.coordinates[0][0], [0, 0]);
    } finally {
      await store.close();
    }
  });

  test('ingest.maxPixels and ingest.maxTiles (TILEVEC_MAX_PIXELS, TILEVEC_MAX_TILES) refuse a raster before reading it', () => {
    const path = join(tmp.path, 'benign.tif');
    const pixels = timedIngest(path, db, true, { TILEVEC_MAX_PIXELS: '262143' }).run;
    assert.match(pixels.stderr, /512 x 512 pixels is more than ingest.maxPixels \(262143, TILEVEC_MAX_PIXELS\)/);
    const tiles = timedIngest(path, db, true, { TILEVEC_MAX_TILES: '255' }).run;
    assert.match(tiles.stderr, /256 tiles is more than ingest.maxTiles \(255, TILEVEC_MAX_TILES\)/);
    assert.equal(timedIngest(path, db, true, { TILEVEC_MAX_TILES: '0' }).run.status, 1);
  });

  test('nothing of the refused files is in the store', async () => {
    const store = await Store.open(db);
    try {
      const [{ rasters, tiles }] = await store.engine.query<{ rasters: number; tiles: number }>(
        'select (select count(*)::int from rasters) as rasters, (select count(*)::int from tiles) as tiles',
      );
      assert.deepEqual({ rasters, tiles }, { rasters: 0, tiles: 0 });
    } finally {
      await store.close();
    }
  });
});

describe('hostile chips, read as ChipEmbedder reads them', () => {
  const tmp = tempDir();
  after(tmp.cleanup);
  const chipOptions = { allowUngeoreferenced: true, maxBlockBytes: 16 * 2 ** 20 };

  test('a chip whose block inflates to 256 MiB fails on the centre window, without inflating it', async () => {
    const path = join(tmp.path, 'bomb-chip.tif');
    writeFileSync(path, craft({ width: 512, height: 512, rowsPerStrip: 512, compression: DEFLATE, streams: [zeros(256 * 2 ** 20)], strips: [0] }));
    const raster = await openRaster(path, chipOptions);
    const rss = process.memoryUsage().rss;
    try {
      assert.ok(raster.width <= chipMaxSide(64));
      await assert.rejects(raster.readWindow({ x: 224, y: 224, w: 64, h: 64 }), /corrupt block 0 at byte \d+: the DEFLATE stream inflates past the block's 262144 bytes/);
      assert.ok(process.memoryUsage().rss - rss < 128 * 2 ** 20);
    } finally {
      await raster.close();
    }
  });

  test('a chip declaring 65536 x 65536 is over the chip bound, and its 64 MiB strips over the chip block limit', async () => {
    assert.ok(65536 > chipMaxSide(64));
    assert.equal(chipMaxSide(32), 512);
    assert.equal(chipMaxSide(256), 1024);
    const path = join(tmp.path, 'huge-chip.tif');
    writeFileSync(path, craft({ width: 65536, height: 65536, rowsPerStrip: 1024, compression: DEFLATE, streams: [zeros(4096)], strips: [0, ...new Array(63).fill(-1)] }));
    await assert.rejects(openRaster(path, chipOptions), /would decode to 64.0 MiB each \(limit 16 MiB\)/);
  });
});

describe('hostile HTTP servers', () => {
  /** A server whose every answer is `status` with `headers`, then `bodyBytes` of zeros written as fast as read. */
  async function server(status: number, headers: Record<string, string>, bodyBytes: number) {
    const { createServer } = await import('node:http');
    let sent = 0;
    const srv = createServer((_req, res) => {
      res.writeHead(status, headers);
      const chunk = Buffer.alloc(64 * 1024);
      let left = bodyBytes;
      const pump = () => {
        while (left > 0) {
          left -= chunk.length;
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (left = 0));
      pump();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}/x.tif`, sent: () => sent, close: () => srv.close() };
  }

  const GB = 1.5 * 2 ** 30;

  test('a 206 to the bytes=0-0 probe carrying 1.5 GB is cut off after the one byte asked for', async () => {
    for (const headers of [{ 'content-range': 'bytes 0-0/4096' } as Record<string, string>, { 'content-range': 'bytes 0-0/4096', 'content-length': String(GB) }]) {
      const s = await server(206, headers, GB);
      const rss = process.memoryUsage().rss;
      try {
        await assert.rejects(openSource(s.url), /the server sent more than the 1 bytes asked for/);
        assert.ok(process.memoryUsage().rss - rss < 256 * 2 ** 20, 'the body was not buffered');
        assert.ok(s.sent() < 256 * 2 ** 20, `${s.sent()} bytes sent`);
      } finally {
        s.close();
      }
    }
  });

  test('a 200 (Range ignored) and a Content-Range other than the one asked for are refused unread', async () => {
    for (const [status, headers] of [[200, {}], [206, { 'content-range': 'bytes 0-1073741823/4294967296' }]] as const) {
      const s = await server(status, headers, GB);
      try {
        await assert.rejects(openSource(s.url), /does not honour HTTP Range requests/);
        assert.ok(s.sent() < 256 * 2 ** 20, `${s.sent()} bytes sent`);
      } finally {
        s.close();
      }
    }
  });

  test('allow-list entries: host:port allows that port, a bare host only the default one', () => {
    assert.ok(hostAllowed(new URL('https://tiles.example.org/a.tif'), ['TILES.example.org']));
    assert.ok(!hostAllowed(new URL('https://tiles.example.org:8443/a.tif'), ['tiles.example.org']));
    assert.ok(hostAllowed(new URL('https://tiles.example.org:8443/a.tif'), ['tiles.example.org:8443']));
    assert.ok(hostAllowed(new URL('http://tiles.example.org/a.tif'), ['tiles.example.org:80']));
    assert.ok(!hostAllowed(new URL('http://tiles.example.org:8080/a.tif'), ['tiles.example.org:8443']));
    assert.ok(!hostAllowed(new URL('https://tiles.example.org.evil.com/a.tif'), ['tiles.example.org']));
  });

  test('a closed port and an open one that hangs up give the same message', async () => {
    const { createServer } = await import('node:net');
    const hangUp = createServer((socket) => socket.destroy());
    await new Promise<void>((r) => hangUp.listen(0, '127.0.0.1', r));
    const open = (hangUp.address() as { port: number }).port;
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    try {
      const message = async (port: number) => {
        const err = await openSource(`http://127.0.0.1:${port}/x.tif`, { timeoutMs: 2000 }).then(() => null, (e: Error) => e.message);
        return err?.replace(String(port), 'PORT');
      };
      const [a, b] = [await message(open), await message(closedPort)];
      assert.equal(a, b);
      assert.match(a!, /cannot fetch it from 127.0.0.1:PORT \(connection failed or timed out after 2 s\)/);
    } finally {
      hangUp.close();
    }
  });
});
