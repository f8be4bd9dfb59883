import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import express, { type Express } from 'express';

const UI_DIR = join(import.meta.dirname, 'ui');
const LEAFLET_DIR = join(dirname(createRequire(import.meta.url).resolve('leaflet/package.json')), 'dist');

/** The web map and the API docs page: static files, with Leaflet served from its npm package so nothing comes from the internet. */
export function mountUi(app: Express): void {
  const label = (route: string): express.RequestHandler => (req, _res, next) => {
    req.metricsRoute = route;
    next();
  };
  const page = (file: string): express.RequestHandler => (_req, res) => res.sendFile(join(UI_DIR, file));
  app.get('/', page('index.html'));
  app.get('/docs', page('docs.html'));
  app.use('/ui', label('/ui/*'), express.static(UI_DIR, { index: false, maxAge: '1h' }));
  app.use('/vendor/leaflet', label('/vendor/leaflet/*'), express.static(LEAFLET_DIR, { index: false, maxAge: '1d' }));
}
