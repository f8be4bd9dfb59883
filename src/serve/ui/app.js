// The visual-search map: tile footprints over a graticule (no base map, so it works offline), similar tiles on
// click, a similarity layer colouring every tile by its distance to the clicked one, an analogy panel and a bbox
// filter. Plain script: Leaflet is the only dependency, served by the API.
'use strict';

const $ = (id) => document.getElementById(id);
const map = L.map('map', { attributionControl: false, worldCopyJump: false }).setView([0, 0], 2);
// Highlights draw above the footprints, so reloading footprints after a pan never covers them.
map.createPane('highlights').style.zIndex = 450;
const renderer = L.svg();
const highlightRenderer = L.svg({ pane: 'highlights' });
const graticule = L.layerGroup().addTo(map);
const footprints = L.geoJSON(null, {
  renderer, style: footprintStyle, onEachFeature: bindTile,
  filter: (f) => !hiddenByDate(f.properties.rasterId),
}).addTo(map);
const highlights = L.layerGroup().addTo(map);
/** Most tiles drawn: pages of 1000 are followed through nextCursor up to this. */
const MAX_FOOTPRINTS = 20000;
let imagery = null;
let currentRaster = null;
let rasters = [];
let lastQuery = null;
let lastResult = null;
const marks = new Map(); // tile id -> 'positive' | 'negative'
let bboxFilter = null;
let bboxRect = null;
let picking = null;
let fitted = false;
/** The similarity layer's distance range over the loaded footprints, or null when the layer is off. */
let distanceRange = null;

/** Viridis at five stops: near tiles bright yellow, far ones dark violet. */
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
  return `rgb(${c.join(',')})`;
}

/** Plain outlines, or with the similarity layer on, each tile filled by its distance to the query (no vector: none). */
function footprintStyle(feature) {
  const d = feature.properties.distance;
  const className = `tile tile-${feature.id}`;
  if (!distanceRange || d === undefined) return { color: '#3f6fb5', weight: 1, fillOpacity: 0.04, className };
  const [lo, hi] = distanceRange;
  const fill = viridis(1 - (d - lo) / (hi - lo || 1));
  return { color: fill, weight: 1, fillColor: fill, fillOpacity: 0.55, className: `${className} similarity` };
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

async function api(path, init) {
  const res = await fetch(path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail || `${res.status} ${res.statusText}`);
  return body;
}

function bindTile(feature, layer) {
  layer.on('click', () => onTileClick(feature));
}

/** Lines every 10/1/0.1... degrees, so position reads without a base map. */
function drawGraticule() {
  graticule.clearLayers();
  const b = map.getBounds();
  const span = Math.max(b.getEast() - b.getWest(), b.getNorth() - b.getSouth());
  const step = Math.pow(10, Math.floor(Math.log10(span / 2)));
  const west = Math.max(-180, Math.floor(b.getWest() / step) * step), east = Math.min(180, b.getEast());
  const south = Math.max(-85, Math.floor(b.getSouth() / step) * step), north = Math.min(85, b.getNorth());
  const style = { color: '#b8c2cc', weight: 0.6, interactive: false };
  for (let x = west; x <= east; x += step) graticule.addLayer(L.polyline([[south, x], [north, x]], style));
  for (let y = south; y <= north; y += step) graticule.addLayer(L.polyline([[y, west], [y, east]], style));
}

function viewBbox() {
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)]
    .map((v) => Number(v.toFixed(6)));
}

/** Every tile in the view, page after page through nextCursor; footprints of dates other than the chosen one are filtered out. */
async function loadFootprints(bbox) {
  const features = [];
  let cursor = null;
  // Decided once, so that every page of one load is coloured against the same query, or none is.
  const distanceTo = $('similarity-layer').checked && lastQuery ? String(lastQuery.id) : null;
  do {
    const params = new URLSearchParams({ limit: '1000' });
    if (bbox) params.set('bbox', bbox.join(','));
    if (cursor) params.set('cursor', cursor);
    if (distanceTo) params.set('distanceTo', distanceTo);
    const page = await api(`/v1/tiles?${params}`);
    features.push(...page.features);
    cursor = page.nextCursor;
  } while (cursor && features.length < MAX_FOOTPRINTS);
  const distances = features.map((f) => f.properties.distance).filter((d) => d !== undefined);
  distanceRange = distances.length ? [Math.min(...distances), Math.max(...distances)] : null;
  $('similarity-legend').hidden = !distanceRange;
  if (distanceRange) $('similarity-range').textContent = `${distanceRange[0].toFixed(3)} – ${distanceRange[1].toFixed(3)}`;
  footprints.clearLayers();
  footprints.addData(features);
  footprintsByZoom();
  return { features };
}

/** A tile is hidden when its raster covers the chosen raster's ground on another date: one date shows at a time. */
function hiddenByDate(rasterId) {
  if (!currentRaster || rasterId === currentRaster.id) return false;
  const r = rasters.find((x) => x.id === rasterId);
  const [a, b] = [r?.bbox, currentRaster.bbox];
  return Boolean(a && b && a[0] < b[2] && a[2] > b[0] && a[1] < b[3] && a[3] > b[1]);
}

/** The rasters of the visible area in the date picker; the chosen one's imagery under the footprints. */
async function loadRasters(bbox) {
  const params = bbox ? `?bbox=${bbox.join(',')}` : '';
  rasters = (await api(`/v1/rasters${params}`)).features.map((f) => ({ ...f.properties, bbox: f.bbox }));
  const select = $('raster');
  const keep = currentRaster && rasters.find((r) => r.id === currentRaster.id);
  select.textContent = '';
  for (const r of rasters) select.append(new Option(`${r.date ?? 'undated'} · ${r.name}`, String(r.id)));
  showRaster(keep ?? rasters[0] ?? null);
  // The change pickers offer the same rasters, oldest first; from the first date to the last by default.
  const dated = [...rasters].sort((a, b) => String(a.date).localeCompare(String(b.date)));
  for (const [id, pick] of [['change-from', 0], ['change-to', dated.length - 1]]) {
    const picker = $(id);
    const kept = picker.value;
    picker.textContent = '';
    for (const r of dated) picker.append(new Option(`${r.date ?? 'undated'} · ${r.name}`, String(r.id)));
    picker.value = dated.some((r) => String(r.id) === kept) ? kept : String(dated[pick]?.id ?? '');
  }
}

function showRaster(raster) {
  currentRaster = raster;
  if (raster) $('raster').value = String(raster.id);
  if (imagery) imagery.remove();
  imagery = null;
  if (raster?.tiles && raster.zoom) {
    // Bounds keep Leaflet from asking for tiles away from the raster.
    const bounds = raster.bbox && L.latLngBounds([raster.bbox[1], raster.bbox[0]], [raster.bbox[3], raster.bbox[2]]);
    imagery = L.tileLayer(raster.tiles, { minNativeZoom: raster.zoom.min, maxNativeZoom: raster.zoom.max, maxZoom: 22, bounds, className: 'imagery' }).addTo(map);
    imagery.bringToBack();
  }
}

async function onTileClick(feature) {
  if (picking) {
    $(`analogy-${picking}`).value = feature.id;
    document.querySelector(`[data-pick=${picking}]`).classList.remove('picking');
    picking = null;
    setStatus(`picked tile ${feature.id}`);
    return;
  }
  const params = new URLSearchParams({ k: $('k').value || '8' });
  if ($('exclude-raster').checked) params.set('excludeSameRaster', 'true');
  if (bboxFilter) params.set('bbox', bboxFilter.join(','));
  setStatus(`searching tiles similar to ${feature.id}…`);
  try {
    const result = await api(`/v1/tiles/${feature.id}/similar?${params}`);
    marks.clear();
    marks.set(feature.id, 'positive');
    lastQuery = feature;
    showQuery(feature);
    showResults(`Similar to tile ${feature.id}`, [feature], result);
    showTimeline(feature.id);
    if ($('similarity-layer').checked) await loadFootprints(viewBbox());
  } catch (err) {
    setStatus(err.message, true);
  }
}

/** The query tile, large, with its date and place. */
function showQuery(feature) {
  const box = $('query');
  box.textContent = '';
  const img = document.createElement('img');
  img.className = 'query-thumb';
  img.alt = `query tile ${feature.id}`;
  img.src = feature.properties.thumbnail;
  const p = feature.properties;
  const text = document.createElement('div');
  text.textContent = `tile ${feature.id} · ${p.date ?? 'undated'} · ${p.rasterName} · ${p.centerLat.toFixed(5)}, ${p.centerLon.toFixed(5)}`;
  box.append(img, text);
}

/** The window's strip across every co-registered date, each with its distance to the date before; hidden for a single date. */
async function showTimeline(tileId) {
  const box = $('timeline');
  try {
    const timeline = await api(`/v1/tiles/${tileId}/timeline`);
    const strip = $('timeline-strip');
    strip.textContent = '';
    for (const f of timeline.features) {
      const item = document.createElement('li');
      item.className = `timeline-date${f.id === tileId ? ' current' : ''}`;
      item.dataset.id = f.id;
      const img = document.createElement('img');
      img.alt = `tile ${f.id}`;
      img.src = f.properties.thumbnail;
      const d = f.properties.distanceToPrevious;
      const text = document.createElement('div');
      text.textContent = `${f.properties.date ?? 'undated'}${d === null ? '' : ` · Δ ${d.toFixed(3)}`}`;
      item.append(img, text);
      strip.append(item);
    }
    box.hidden = timeline.features.length < 2;
  } catch (err) {
    box.hidden = true;
    setStatus(err.message, true);
  }
}

/** The windows that changed most between the two picked dates, ranked; clicking one shows its timeline. */
async function runChange() {
  const [from, to] = [$('change-from').value, $('change-to').value];
  if (!from || !to || from === to) return setStatus('pick two different dates', true);
  const params = new URLSearchParams({ from, to, k: $('k').value || '8' });
  if (bboxFilter) params.set('bbox', bboxFilter.join(','));
  setStatus('ranking windows by change…');
  try {
    const result = await api(`/v1/change?${params}`);
    const name = (id) => rasters.find((r) => String(r.id) === id)?.date ?? `raster ${id}`;
    lastQuery = null;
    $('query').textContent = '';
    showResults(`Changed most, ${name(from)} → ${name(to)}`, [], result);
    document.body.dataset.view = 'change';
    if (result.features.length) showTimeline(result.features[0].id);
  } catch (err) {
    setStatus(err.message, true);
  }
}

/** Re-ranks with the marks: the server picks Rocchio or a logistic regression, and says which. */
async function rerank() {
  const positives = [...marks].filter(([, m]) => m === 'positive').map(([id]) => id);
  const negatives = [...marks].filter(([, m]) => m === 'negative').map(([id]) => id);
  if (!positives.length) return setStatus('mark at least one result ✓', true);
  const body = { positives, negatives, k: Number($('k').value) || 8 };
  if (bboxFilter) body.bbox = bboxFilter;
  try {
    const result = await api('/v1/search', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    showResults(`Re-ranked (${result.method}, ${positives.length}✓ ${negatives.length}✗)`, lastQuery ? [lastQuery] : [], result);
    document.body.dataset.method = result.method;
  } catch (err) {
    setStatus(err.message, true);
  }
}

/** The shown results as a file download: GeoJSON, or GeoParquet with their embeddings. */
async function exportResults(format) {
  if (!lastResult?.features.length) return setStatus('no results to export', true);
  const body = { tileIds: lastResult.features.map((f) => f.id), format, model: lastResult.model };
  try {
    const res = await fetch('/v1/tiles/export', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).detail || `${res.status} ${res.statusText}`);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(await res.blob());
    link.download = format === 'geojson' ? 'found-tiles.geojson' : 'found-tiles.parquet';
    link.click();
    URL.revokeObjectURL(link.href);
    setStatus(`exported ${body.tileIds.length} tiles as ${format}`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

/** The ✓ and ✗ marks as a two-class label set for `tilevec classify train` (a write: it needs the token). */
async function saveLabelSet() {
  const positives = [...marks].filter(([, m]) => m === 'positive').map(([id]) => id);
  const negatives = [...marks].filter(([, m]) => m === 'negative').map(([id]) => id);
  const name = $('labelset-name').value.trim();
  if (!name) return setStatus('name the label set', true);
  if (!positives.length) return setStatus('mark at least one result ✓', true);
  try {
    const saved = await api('/v1/label-sets', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${$('labelset-token').value}` },
      body: JSON.stringify({ name, positives, negatives }),
    });
    setStatus(`saved label set '${saved.name}' (${positives.length}✓ ${negatives.length}✗): ${saved.train}`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function runAnalogy() {
  const ids = ['a', 'b', 'c'].map((n) => Number($(`analogy-${n}`).value));
  if (!ids.every((id) => Number.isInteger(id) && id > 0)) return setStatus('pick three tiles for a, b and c', true);
  const body = { a: ids[0], b: ids[1], c: ids[2], k: Number($('k').value) || 8 };
  if (bboxFilter) body.bbox = bboxFilter;
  setStatus('running analogy…');
  try {
    const result = await api('/v1/analogy', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const inputs = await Promise.all(ids.map((id) => api(`/v1/tiles/${id}`)));
    showResults(`${ids[0]} − ${ids[1]} + ${ids[2]}`, inputs, result);
  } catch (err) {
    setStatus(err.message, true);
  }
}

/** Query tiles in red, results in orange with their rank, and the list with thumbnails. */
function showResults(title, queryFeatures, result) {
  highlights.clearLayers();
  L.geoJSON(queryFeatures, { renderer: highlightRenderer, pane: 'highlights', interactive: false, style: { color: '#d50000', weight: 3, fillOpacity: 0.25 } }).addTo(highlights);
  result.features.forEach((f, i) => {
    L.geoJSON(f, { renderer: highlightRenderer, pane: 'highlights', interactive: false, style: { color: '#ff6f00', weight: 3, fillOpacity: 0.3, className: `result-footprint result-${f.id}` } })
      .bindTooltip(String(i + 1), { permanent: true, direction: 'center', className: 'rank-label' })
      .addTo(highlights);
  });
  $('results-title').textContent = `${title} (${result.model})`;
  const list = $('results');
  list.textContent = '';
  result.features.forEach((f, i) => {
    const item = document.createElement('li');
    item.className = 'result';
    item.dataset.id = f.id;
    const img = document.createElement('img');
    img.alt = `tile ${f.id}`;
    img.src = f.properties.thumbnail;
    img.onerror = () => {
      const box = document.createElement('div');
      box.className = 'noimg';
      box.textContent = 'no thumbnail';
      img.replaceWith(box);
    };
    const text = document.createElement('div');
    const p = f.properties;
    const measure = p.distance !== undefined ? `d = ${p.distance.toFixed(4)}` : `p = ${p.score.toFixed(3)}`;
    text.textContent = `#${i + 1} · ${p.date ?? 'undated'} · ${measure} · tile ${f.id}`;
    const mark = (kind, label) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `mark mark-${kind}${marks.get(f.id) === kind ? ' on' : ''}`;
      b.textContent = label;
      b.addEventListener('click', (e) => {
        e.stopPropagation();
        if (marks.get(f.id) === kind) marks.delete(f.id); else marks.set(f.id, kind);
        item.querySelectorAll('.mark').forEach((m) => m.classList.toggle('on', marks.get(f.id) === (m.classList.contains('mark-positive') ? 'positive' : 'negative')));
      });
      return b;
    };
    text.append(document.createElement('br'), mark('positive', '✓'), mark('negative', '✗'));
    item.append(img, text);
    item.addEventListener('click', () => {
      // The tile with its surroundings: about an eighth of the view across, whatever the zoom was.
      map.fitBounds(L.geoJSON(f).getBounds().pad(3.5));
      if (f.properties.fromTileId !== undefined) showTimeline(f.id);
    });
    list.append(item);
  });
  lastResult = result;
  $('feedback').hidden = result.features.length === 0;
  setStatus(result.features.length ? `${result.features.length} results` : 'no results');
}

$('bbox-set').addEventListener('click', () => {
  bboxFilter = viewBbox();
  if (bboxRect) bboxRect.remove();
  bboxRect = L.rectangle([[bboxFilter[1], bboxFilter[0]], [bboxFilter[3], bboxFilter[2]]], { color: '#6a1b9a', weight: 2, dashArray: '6 4', fill: false, interactive: false }).addTo(map);
  $('bbox-text').textContent = bboxFilter.join(', ');
});
$('bbox-clear').addEventListener('click', () => {
  bboxFilter = null;
  if (bboxRect) bboxRect.remove();
  bboxRect = null;
  $('bbox-text').textContent = 'none';
});
for (const button of document.querySelectorAll('[data-pick]')) {
  button.addEventListener('click', () => {
    document.querySelectorAll('[data-pick]').forEach((b) => b.classList.remove('picking'));
    picking = button.dataset.pick;
    button.classList.add('picking');
    setStatus(`click a tile on the map for ${picking}`);
  });
}
$('similarity-layer').addEventListener('change', () => {
  if ($('similarity-layer').checked && !lastQuery) setStatus('click a tile: the layer colours every tile by its distance to it');
  loadFootprints(viewBbox()).catch((err) => setStatus(err.message, true));
});
$('analogy-run').addEventListener('click', runAnalogy);
$('change-run').addEventListener('click', runChange);
$('rerank').addEventListener('click', rerank);
$('export-geojson').addEventListener('click', () => exportResults('geojson'));
$('export-geoparquet').addEventListener('click', () => exportResults('geoparquet'));
$('labelset-save').addEventListener('click', saveLabelSet);
$('raster').addEventListener('change', () => {
  showRaster(rasters.find((r) => String(r.id) === $('raster').value) ?? null);
  footprints.clearLayers();
  loadFootprints(viewBbox()).catch((err) => setStatus(err.message, true));
});

/** Below this many screen pixels across a tile, outlines would hide the imagery, so the footprints give way to it. */
const MIN_FOOTPRINT_PX = 6;

/** Shows the footprints only while a tile is big enough on screen to see and click; the similarity layer always shows. */
function footprintsByZoom() {
  const first = footprints.getLayers()[0];
  if (!first) return;
  const b = first.getBounds();
  const width = map.latLngToContainerPoint(b.getNorthEast()).x - map.latLngToContainerPoint(b.getSouthWest()).x;
  const show = Boolean(distanceRange) || width >= MIN_FOOTPRINT_PX;
  if (show && !map.hasLayer(footprints)) footprints.addTo(map);
  if (!show && map.hasLayer(footprints)) footprints.remove();
  document.body.dataset.footprints = show ? 'shown' : 'hidden';
}

map.on('moveend', drawGraticule);
map.on('zoomend', footprintsByZoom);
// After the first fit, reload footprints for whatever the user pans to.
map.on('moveend', () => {
  if (!fitted) return;
  const bbox = viewBbox();
  Promise.all([loadFootprints(bbox), loadRasters(bbox)]).catch((err) => setStatus(err.message, true));
});

(async () => {
  try {
    await loadRasters(null);
    const page = await loadFootprints(null);
    if (page.features.length) map.fitBounds(footprints.getBounds(), { padding: [20, 20] });
    drawGraticule();
    fitted = true;
    setStatus(page.features.length ? 'ready: click a tile' : 'no tiles in the store yet');
    document.body.dataset.ready = 'true';
  } catch (err) {
    setStatus(err.message, true);
  }
})();
