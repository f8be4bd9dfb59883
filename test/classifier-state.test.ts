import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLASSIFIER_KINDS, createClassifier, deserializeClassifier, serializeClassifier, type ClassifierKind } from '../src/classify/index.ts';
import { UserError } from '../src/errors.ts';
import { uniform } from '../src/rng.ts';

const random = uniform(4);
const rows = Array.from({ length: 60 }, (_, i) => [i % 3 + random(), random(), random() * 2]);
const labels = rows.map((_, i) => [3, 7, 9][i % 3]);
const metadata = { model: { id: 1, name: 'm' }, featureSet: 'embedding', dim: 3, classes: [{ id: 3, name: 'a' }, { id: 7, name: 'b' }, { id: 9, name: 'c' }] };

function saved(kind: ClassifierKind) {
  return JSON.parse(serializeClassifier(createClassifier(kind, { trees: 5, seed: 2 }).fit(rows, labels), metadata));
}

/** Deserializing `doc` fails with a UserError (status 422) whose message matches `re` and names the file. */
function assertDamaged(doc: unknown, re: RegExp, what: string): void {
  assert.throws(() => deserializeClassifier(JSON.stringify(doc), 'landcover.json'), (err: Error) => {
    assert.ok(err instanceof UserError, `${what}: ${err}`);
    assert.equal(err.status, 422);
    assert.match(err.message, /^landcover\.json /);
    assert.match(err.message, re, what);
    return true;
  }, what);
}

for (const kind of CLASSIFIER_KINDS) {
  test(`${kind}: a saved classifier round-trips; damaged state fails at load, naming what is wrong`, () => {
    const doc = saved(kind);
    const back = deserializeClassifier(JSON.stringify(doc));
    assert.deepEqual(back.classifier.predictProba(rows), createClassifier(kind, { trees: 5, seed: 2 }).fit(rows, labels).predictProba(rows));
    const damage: [string, (s: any) => void, RegExp][] = [
      ['no classes', (s) => delete s.classes, /classes/],
      ['classes out of order', (s) => s.classes.reverse(), /distinct and ascending/],
      ['a string where a number goes', (s) => (s.classes[0] = '3'), /classes\.0/],
    ];
    if (kind === 'logreg') {
      damage.push(['a weight row short', (s) => s.weights[1].pop(), /weights\.1: .*3 features and an intercept/]);
      damage.push(['a class without weights', (s) => s.weights.pop(), /one row of weights per class/]);
      damage.push(['a scaler of another width', (s) => s.scaler.mean.push(0), /scaler\.mean/]);
      damage.push(['a zero std', (s) => (s.scaler.std[0] = 0), /scaler\.std\.0/]);
    } else if (kind === 'rf') {
      damage.push(['a child pointing back at the root (prediction would loop)', (s) => {
        const t = s.trees[0];
        const node = t.feature.findIndex((f: number) => f >= 0);
        t.left[node] = 0;
      }, /trees\.0: node \d+'s children/]);
      damage.push(['a split on a feature the rows lack', (s) => (s.trees[0].feature[0] = 3), /trees\.0\.feature\.0/]);
      damage.push(['a leaf without probabilities', (s) => {
        const t = s.trees[1];
        t.proba[t.feature.findIndex((f: number) => f < 0)] = null;
      }, /leaf \d+ has no probability/]);
      damage.push(['no trees', (s) => (s.trees = []), /trees/]);
    } else {
      damage.push(['a point of another width', (s) => s.points[4].push(1), /points\.4/]);
      damage.push(['a point class past the classes', (s) => (s.pointClass[2] = 3), /pointClass\.2: class index 3 of 3/]);
      damage.push(['fewer point classes than points', (s) => s.pointClass.pop(), /59 point classes for 60 points/]);
      damage.push(['k of 0', (s) => (s.options.k = 0), /options\.k/]);
    }
    for (const [what, harm, re] of damage) {
      const copy = structuredClone(doc);
      harm(copy.state);
      assertDamaged(copy, re, what);
    }
  });
}

test('the envelope and metadata are checked too', () => {
  const doc = saved('logreg');
  assertDamaged({ ...doc, metadata: { ...doc.metadata, dim: 'three' } }, /damaged metadata \(dim: /, 'dim a string');
  assertDamaged({ ...doc, metadata: { ...doc.metadata, dim: 4 } }, /scaler\.mean/, 'metadata dim not the state\'s');
  assertDamaged({ ...doc, metadata: { ...doc.metadata, classes: [{ id: 3 }] } }, /damaged metadata \(classes\.0\.name/, 'a class without a name');
  assertDamaged({ ...doc, kind: 'svm' }, /is not a tilevec classifier/, 'unknown kind');
  assertDamaged({ ...doc, version: 2 }, /format version 2; this tilevec reads version 1/, 'future version');
  assertDamaged(null, /is not a tilevec classifier/, 'null');
  assertDamaged({ ...doc, state: [1, 2] }, /is damaged: its logreg state does not fit/, 'state an array');
  assertDamaged({ ...doc, state: undefined }, /is damaged: its logreg state does not fit/, 'no state');
  assert.throws(() => deserializeClassifier('{"format": ', 'x.json'), /x\.json is not valid JSON/);
});
