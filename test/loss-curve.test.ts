import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { GDAL_PY, gdalMissing } from './helpers.ts';
import { lossCurveSvg } from '../src/train/loss-curve.ts';


/** The SVG's text elements and element names, as Python's XML parser reads them. */
function parseSvg(svg: string): { texts: string[]; tags: string[] } {
  return JSON.parse(execFileSync(GDAL_PY, ['-c', `
import json, sys
import xml.etree.ElementTree as E
root = E.fromstring(sys.stdin.read())
print(json.dumps({"texts": [t.text for t in root.iter('{http://www.w3.org/2000/svg}text')], "tags": sorted({e.tag.split('}')[1] for e in root.iter()})}))
`], { input: svg, encoding: 'utf8' }));
}

test('a model name with markup stays the title text, and a 300,000-step history draws', { skip: gdalMissing() }, () => {
  const name = `evil"</text><script>alert('x')</script><text>& co`;
  const losses = Array.from({ length: 300_000 }, (_, i) => 10 / (1 + i / 1000));
  const { texts, tags } = parseSvg(lossCurveSvg(losses, `${name}: Tile2Vec triplet loss`));
  assert.equal(texts[0], `${name}: Tile2Vec triplet loss`);
  assert.deepEqual(tags, ['line', 'path', 'rect', 'svg', 'text']);
  // The axis ticks run from the smallest loss to the largest.
  const lo = losses.at(-1)!;
  assert.deepEqual(texts.slice(1, 6).map(Number), [0, 0.25, 0.5, 0.75, 1].map((f) => Number((lo + f * (10 - lo)).toPrecision(3))));
});

test('the moving average is the mean of the trailing window', () => {
  // 40 steps: a window of 2. The bold path's second point is the mean of steps 1 and 2, the first step alone.
  const losses = Array.from({ length: 40 }, (_, i) => (i % 2 ? 4 : 0));
  const svg = lossCurveSvg(losses);
  const bold = /<path d="([^"]+)"[^>]*stroke-width="2"/.exec(svg)![1];
  const ys = bold.split(/[ML]/).filter(Boolean).map((p) => Number(p.split(',')[1]));
  const [top, bottom] = [30, 320];
  assert.equal(ys[0], bottom);
  for (const y of ys.slice(1)) assert.equal(y, (top + bottom) / 2);
});
