import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, redactConfig, DEFAULT_DB } from '../src/config.ts';
import { lastJson, runCli } from './helpers.ts';

test('flags win over the environment, which wins over the defaults', () => {
  assert.equal(loadConfig({}, {}).db, DEFAULT_DB);
  assert.equal(loadConfig({}, { DATABASE_URL: 'postgres://a/b' }).db, 'postgres://a/b');
  assert.equal(loadConfig({}, { TILEVEC_DB: '', DATABASE_URL: 'postgres://a/b' }).db, 'postgres://a/b', 'empty counts as unset');
  assert.equal(loadConfig({}, { DATABASE_URL: 'postgres://a/b', TILEVEC_DB: '/tmp/x' }).db, '/tmp/x');
  assert.equal(loadConfig({ db: '/flag' }, { TILEVEC_DB: '/tmp/x' }).db, '/flag');
  const c = loadConfig({ serve: { port: 9000 } }, { TILEVEC_PORT: '8081', TILEVEC_HOST: '0.0.0.0', TILEVEC_CORS_ORIGINS: 'http://a, http://b' });
  assert.equal(c.serve.port, 9000);
  assert.equal(c.serve.host, '0.0.0.0');
  assert.deepEqual(c.serve.corsOrigins, ['http://a', 'http://b']);
});

test('bad values are one clear error naming the field', () => {
  assert.throws(() => loadConfig({}, { TILEVEC_PORT: 'eighty' }), /invalid configuration: serve\.port/);
  assert.throws(() => loadConfig({}, { TILEVEC_LOG_LEVEL: 'loud' }), /invalid configuration: logLevel/);
  assert.throws(() => loadConfig({}, { TILEVEC_TOKEN: 'short' }), /serve\.token: the service token must be at least 16 characters/);
});

test('secrets never reach the printed config', async () => {
  const redacted = redactConfig(loadConfig({ db: 'postgres://u:hunter2@h/db' }, { TILEVEC_TOKEN: 'a-very-long-secret-token' }));
  assert.equal(redacted.db, 'postgres://u:***@h/db');
  assert.equal(redacted.serve.token, '***');
  const r = await runCli(['config', '--json', '--db', 'postgres://u:hunter2@h/db'], { env: { TILEVEC_TOKEN: 'a-very-long-secret-token' } });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /hunter2|a-very-long-secret-token/);
  assert.equal(lastJson<{ db: string }>(r.stdout).db, 'postgres://u:***@h/db');
});

test('the CLI answers --help, and a bad invocation fails with usage and no stack trace', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: tilevec/);
  for (const cmd of ['db', 'config', 'demo']) assert.match(help.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
  const bad = await runCli(['no-such-command']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown command 'no-such-command'/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /);
  const badEnv = await runCli(['config'], { env: { TILEVEC_PORT: '-1' } });
  assert.equal(badEnv.code, 1);
  assert.match(badEnv.stderr, /^tilevec: invalid configuration: serve\.port/);
});

test('models live beside an embedded database unless set', () => {
  assert.equal(loadConfig({}, {}).modelsDir, '.tilevec/models');
  assert.equal(loadConfig({ db: '/data/project/db' }, {}).modelsDir, '/data/project/models');
  assert.equal(loadConfig({ db: 'postgres://h/db' }, {}).modelsDir, '.tilevec/models');
  assert.equal(loadConfig({ db: '/data/project/db' }, { TILEVEC_MODELS_DIR: '/models' }).modelsDir, '/models');
});
