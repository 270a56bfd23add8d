// Generic secrets end to end: the real credsync binary writes a Generic
// secret raw and a database credential JSON as one file per key, beside
// credentials.ini, from the emulator over TLS; a new version reaches both
// files after a Refresh, in one switch with the rest of the directory; a
// malformed value keeps the last good files. The control API (GetStatus,
// Watch, Refresh) reports generic profiles by version.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_generic_secrets).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import { connectControl, status } from './grpc_client.mjs';
import { runCredsync, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig } from './sidecar.mjs';

const DB_SECRET = 'db/orders';
const API_SECRET = 'api/payments-key';
const BLOB_SECRET = 'tls/client-key';
const RAM_SECRET = 'acs/ram/user/orders-app';

let emu;
let ctx;

before(async () => {
  emu = await startEmulator();
  const world = await setUpRrsaWorld(emu, {
    name: 'generic', secrets: [RAM_SECRET], readable: [RAM_SECRET, DB_SECRET, API_SECRET, BLOB_SECRET],
  });
  const dbValue = { username: 'orders', password: 'Pg-pass-0001-xyz', port: 5432, ssl: { mode: 'verify-full' } };
  const db = await emu.admin('POST', '/admin/secrets',
                             { name: DB_SECRET, type: 'Generic', data: JSON.stringify(dbValue) });
  const api = await emu.admin('POST', '/admin/secrets',
                              { name: API_SECRET, type: 'Generic', data: 'sk_live_generic_0001' });
  const blob = Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x42]);
  await emu.admin('POST', '/admin/secrets',
                  { name: BLOB_SECRET, type: 'Generic', data_type: 'binary', data: blob.toString('base64') });
  const out = path.join(world.dir, 'out');
  const configFile = writeConfig(world.dir, {
    kms: { endpoints: [emu.endpoint] },
    tls: { ca_file: emu.caFile },
    profiles: [
      { name: 'app', secret_name: RAM_SECRET },
      { name: 'db', secret_name: DB_SECRET, kind: 'generic', format: 'json_keys' },
      { name: 'payments', secret_name: API_SECRET, kind: 'generic', file: 'payments-api-key' },
      { name: 'tls', secret_name: BLOB_SECRET, kind: 'generic', format: 'raw', file: 'client.key' },
    ],
    output: { directory: out },
    refresh: { jitter: 0, rotation_jitter: '0s' },
    log: { level: 'debug' },
  });
  const sc = await startSidecar({ configFile, env: world.env, name: 'generic' });
  const socket = await sc.listening('unix');
  ctx = { world, out, sc, api: connectControl(`unix:${socket}`), dbValue, db, apiVersion: api, blob, configFile };
  await waitForFile(path.join(out, 'db.password'));
  await until(async () => (await ctx.api.getStatus()).response.ready, 'readiness');
});

after(async () => {
  ctx?.api.close();
  await ctx?.sc.stop();
  await emu?.stop();
});

const read = (name) => fs.readFileSync(path.join(ctx.out, name));
const readText = (name) => read(name).toString('utf8');

describe('generic secrets', () => {
  // Verifies the files: raw text as is, binary decoded, one file per JSON
  // key (strings bare, other values compact JSON), all beside credentials.ini
  // in the same ..data directory, with the file mode, and none of them in
  // credentials.ini.
  it('writes raw, binary and json_keys files beside credentials.ini', () => {
    assert.equal(readText('payments-api-key'), 'sk_live_generic_0001');
    assert.deepEqual(read('client.key'), ctx.blob);
    assert.equal(readText('db.username'), 'orders');
    assert.equal(readText('db.password'), ctx.dbValue.password);
    assert.equal(readText('db.port'), '5432');
    assert.equal(readText('db.ssl'), '{"mode":"verify-full"}');
    const ini = readText('credentials.ini');
    assert.match(ini, /^\[default\]/);
    assert.match(ini, /\[app\]/);
    assert.doesNotMatch(ini, /\[db\]|\[payments\]|\[tls\]/);
    for (const name of ['db.password', 'payments-api-key', 'client.key', 'credentials.ini']) {
      assert.equal(fs.readlinkSync(path.join(ctx.out, name)), `..data/${name}`);
      assert.equal(fs.statSync(path.join(ctx.out, name)).mode & 0o777, 0o440);
    }
  });

  // Verifies `credsync validate` lists the generic profiles as such.
  it('validate names the generic profiles', async () => {
    const result = await runCredsync(['validate', '--config', ctx.configFile], { env: ctx.world.env, name: 'validate' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /4 profile\(s\) \[app, db \(generic\), payments \(generic\), tls \(generic\)\]/);
  });

  // Verifies GetStatus tells the kinds apart and lists each generic
  // profile's version and files, without an AccessKey id.
  it('reports generic profiles in GetStatus', async () => {
    const { response } = await ctx.api.getStatus();
    const byName = Object.fromEntries(response.profiles.map((p) => [p.name, p]));
    assert.equal(byName.app.kind, 'PROFILE_KIND_RAM_CREDENTIALS');
    assert.notEqual(byName.app.access_key_id, '');
    assert.equal(byName.db.kind, 'PROFILE_KIND_GENERIC');
    assert.equal(byName.db.access_key_id, '');
    assert.equal(byName.db.version_id, ctx.db.version_id);
    assert.deepEqual(byName.db.files, ['db.password', 'db.port', 'db.ssl', 'db.username']);
    assert.deepEqual(byName.payments.files, ['payments-api-key']);
    assert.equal(byName.db.written, true);
  });

  // Verifies a new version put into KMS reaches the files on Refresh (empty
  // failed_version_id: "the version I have"), in one switch with
  // credentials.ini; Watch reports it by version; a removed key's file goes.
  it('brings a new version on Refresh, switching every file together', async () => {
    const watch = ctx.api.watch({ profile: 'db' });
    const initial = await watch.next();
    assert.equal(initial.initial, true);
    assert.equal(initial.version_id, ctx.db.version_id);
    const before = fs.readlinkSync(path.join(ctx.out, '..data'));
    const iniBefore = readText('credentials.ini');

    const next = { username: 'orders', password: 'Pg-pass-0002-xyz', port: 6432 };
    const put = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(DB_SECRET)}/versions`, { data: JSON.stringify(next) });
    const { response } = await ctx.api.refresh({ profile: 'db', reason: 'password rejected' });
    assert.equal(response.outcome, 'OUTCOME_REFRESHED');
    assert.equal(response.version_id, put.version_id);
    assert.equal(response.access_key_id, '');

    assert.equal(readText('db.password'), 'Pg-pass-0002-xyz');
    assert.equal(readText('db.port'), '6432');
    assert.equal(fs.existsSync(path.join(ctx.out, 'db.ssl')), false);
    // One new directory holds every file: the same key in credentials.ini,
    // the other generic files unchanged.
    const afterDir = fs.readlinkSync(path.join(ctx.out, '..data'));
    assert.notEqual(afterDir, before);
    assert.equal(readText('credentials.ini'), iniBefore);
    assert.equal(fs.readFileSync(path.join(ctx.out, afterDir, 'payments-api-key'), 'utf8'), 'sk_live_generic_0001');

    const change = await watch.next();
    assert.equal(change.version_id, put.version_id);
    assert.equal(change.previous_version_id, ctx.db.version_id);
    assert.equal(change.access_key_id, '');
    watch.cancel();

    // Naming the old version now is answered from memory.
    const again = await ctx.api.refresh({ profile: 'db', failed_version_id: ctx.db.version_id });
    assert.equal(again.response.outcome, 'OUTCOME_ALREADY_CURRENT');
    assert.equal(again.response.version_id, put.version_id);
    ctx.dbVersion = put.version_id;
  });

  // Verifies a rotated key and a new generic version, refreshed at once,
  // both land in the current set. (Whether they share one switch depends on
  // the runner's rounds; sync_engine_test proves a shared round publishes
  // one set.)
  it('serves a rotated key and a new generic version side by side', async () => {
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(RAM_SECRET)}/rotate`, {});
    const put = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(API_SECRET)}/versions`, { data: 'sk_live_generic_0002' });
    const [ram, api] = await Promise.all([
      ctx.api.refresh({ profile: 'app', failed_access_key_id: rotated.previous_access_key_id }),
      ctx.api.refresh({ profile: 'payments' }),
    ]);
    assert.equal(ram.response.access_key_id, rotated.access_key_id);
    assert.equal(api.response.version_id, put.version_id);
    const dataDir = fs.readlinkSync(path.join(ctx.out, '..data'));
    assert.match(fs.readFileSync(path.join(ctx.out, dataDir, 'credentials.ini'), 'utf8'),
                 new RegExp(`access_key_id = ${rotated.access_key_id}`));
    assert.equal(fs.readFileSync(path.join(ctx.out, dataDir, 'payments-api-key'), 'utf8'), 'sk_live_generic_0002');
  });

  // Verifies a malformed value (not a JSON object) fails the fetch with a
  // clear error that does not quote it, and the last good files stay.
  it('keeps the last good files when a new value is malformed', async () => {
    await emu.admin('POST', `/admin/secrets/${encodeURIComponent(DB_SECRET)}/versions`,
                    { data: 'password=Pg-pass-0003-broken' });
    const err = await ctx.api.refresh({ profile: 'db' }).then(
      () => assert.fail('Refresh succeeded'), (e) => e);
    assert.equal(err.code, status.FAILED_PRECONDITION);
    assert.match(err.details, /not valid JSON/);
    assert.doesNotMatch(err.details, /Pg-pass-0003/);
    assert.equal(readText('db.password'), 'Pg-pass-0002-xyz');
    const { response } = await ctx.api.getStatus();
    const db = response.profiles.find((p) => p.name === 'db');
    assert.match(db.last_error.message, /not valid JSON/);
    assert.equal(db.written, true);
    assert.equal(response.ready, true);
    for (const line of ctx.sc.stderr().split('\n')) {
      assert.doesNotMatch(line, /Pg-pass-|sk_live_generic/);
    }
  });
});
