import { after, before } from 'node:test';
import { existsSync } from 'node:fs';
import { PNG } from 'pngjs';
import { chromium, type Browser } from 'playwright-core';
import type { Config } from '../src/config.ts';
import { Store } from '../src/store/index.ts';
import { startServer, type RunningServer, type ServeDeps } from '../src/serve/index.ts';
import { required, tempDir } from './helpers.ts';
import { testConfig } from './serve-fixtures.ts';

export const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps dialling hosts this machine cannot reach.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Why the browser suites skip, or false; under CI=true a missing Chromium fails instead (required()). */
export function chromiumMissing(): string | false {
  return required(existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium)`);
}

/** A flat PNG of one colour, so screenshots show thumbnails and imagery without real rasters. */
export function flatPng(size: number, rgb: [number, number, number]): Buffer {
  const png = new PNG({ width: size, height: size });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([...rgb, 255], i);
  return PNG.sync.write(png);
}

export interface BrowserWorld {
  store: Store;
  server: RunningServer;
  browser: Browser;
  /** A folder for screenshots, kept when TILEVEC_KEEP_SCREENSHOTS is set. */
  shots: { path: string };
}

/**
 * A suite's in-memory store, served, and a headless Chromium: `setup` seeds the store and returns the renderers
 * (and config) the service gets; everything closes after the suite. Call inside a describe.
 */
export function browserWorld(prefix: string, setup: (store: Store) => Promise<Partial<Omit<ServeDeps, 'store'>> & { config?: Config }>): BrowserWorld {
  const world = {} as BrowserWorld;
  const shots = tempDir(prefix);
  world.shots = shots;
  before(async () => {
    world.store = await Store.open('memory://');
    const deps = await setup(world.store);
    world.server = await startServer({ config: testConfig(), ...deps, store: world.store });
    world.browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(async () => {
    await world.browser?.close();
    await world.server?.close();
    await world.store?.close();
    if (!process.env.TILEVEC_KEEP_SCREENSHOTS) shots.cleanup();
  });
  return world;
}
