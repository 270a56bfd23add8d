// Hostile upstream bodies end to end (issue 6): the emulator answers KMS
// GetSecretValue or STS AssumeRoleWithOIDC with a chosen body (fault kind
// "body": huge, deeply nested, wrong types for every field, missing fields,
// invalid UTF-8, SecretData that is not JSON or has wrong types, values that
// would inject into credentials.ini or HTTP headers). For each, credsync
// must reject the answer: GetStatus shows the error, credentials.ini and its
// ..data target stay byte-identical, the process stays alive and live, and
// its peak resident memory (VmHWM) stays under 64 MiB even after 64 MiB
// bodies, since the HTTP client caps responses at 1 MiB.
//
// Each hostile body is a mutation of a valid answer whose key would differ
// from the file's, and that valid answer itself is shown to be accepted
// first (the control), so a rejection is due to the mutation alone.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_hostile_bodies).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import { connectControl } from './grpc_client.mjs';
import { httpGet, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig } from './sidecar.mjs';

// Peak RSS bound for the release binary: far below the 64 MiB bodies, so a
// body was never buffered whole. An ASan build's shadow memory and its
// quarantine of freed buffers make its RSS meaningless for this; there the
// bound is the growth a 1 MiB response cap allows several times over.
const ASAN_BUILD = fs.readFileSync(process.env.CREDSYNC_BIN).includes('__asan_init');
const MAX_HWM_KIB = ASAN_BUILD ? Infinity : 64 * 1024;
const MAX_HWM_GROWTH_KIB = ASAN_BUILD ? 96 * 1024 : 40 * 1024;
const HUGE_BYTES = 64 * 1024 * 1024;
const DEPTH = 100000;
const HOSTILE_KEY_ID = 'LTAI5tHOSTILEBODY0000001';
const HOSTILE_STS_ID = 'STS.HOSTILEBODY000000000000001';
const KMS_BED = 'hostilekms';
function vmHwmKib(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(text.match(/^VmHWM:\s+(\d+) kB$/m)[1]);
}

function iso(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const b64 = (bytes) => Buffer.from(bytes).toString('base64');

// A valid GetSecretValue answer for `secret`, carrying HOSTILE_KEY_ID.
function kmsAnswer(secret, overrides = {}, secretData = {}) {
  const data = {
    AccessKeyId: HOSTILE_KEY_ID,
    AccessKeySecret: 'HostileBodySecret0000000000000',
    GenerateTimestamp: '2026-11-01T00:00:00Z',
    ...secretData,
  };
  return {
    RequestId: 'A8A2B1C6-0000-4000-8000-000000000001',
    SecretName: secret,
    SecretType: 'RAMCredentials',
    SecretData: JSON.stringify(data),
    SecretDataType: 'text',
    VersionId: 'hostile-version-1',
    VersionStages: { VersionStage: ['ACSCurrent'] },
    CreateTime: '2026-11-01T00:00:00Z',
    LastRotationDate: '2026-11-01T00:00:00Z',
    NextRotationDate: '2026-11-08T00:00:00Z',
    RotationInterval: '604800s',
    AutomaticRotation: 'Enabled',
    ExtendedConfig: JSON.stringify({ SecretSubType: 'RamUserAccessKey', UserName: 'hostile' }),
    ...overrides,
  };
}

// A valid AssumeRoleWithOIDC answer carrying HOSTILE_STS_ID.
function stsAnswer(overrides = {}, credentials = {}) {
  return {
    RequestId: 'A8A2B1C6-0000-4000-8000-000000000002',
    AssumedRoleUser: { Arn: 'acs:ram::1234567890123456:role/hostile/credsync', AssumedRoleId: '300000000000000000:credsync' },
    Credentials: {
      AccessKeyId: HOSTILE_STS_ID,
      AccessKeySecret: 'HostileStsSecret00000000000000000000000000000',
      SecurityToken: `CAIS${'h'.repeat(200)}`,
      Expiration: iso(Date.now() + 3600 * 1000),
      ...credentials,
    },
    OIDCTokenInfo: { Subject: 'system:serviceaccount:default:hostile', Issuer: 'https://issuer', ClientIds: 'sts.aliyuncs.com' },
    SourceIdentity: '',
    ...overrides,
  };
}

const json = (value) => ({ body: JSON.stringify(value) });
const withoutKey = (object, key) => {
  const copy = { ...object };
  delete copy[key];
  return copy;
};

// Every top-level field of the KMS answer, each given a value of a type it
// must not have.
function wrongTypeCases(secret) {
  const wrong = {
    RequestId: 42, SecretName: 42, SecretType: ['RAMCredentials'], SecretData: { AccessKeyId: HOSTILE_KEY_ID },
    SecretDataType: true, VersionId: 1, VersionStages: 'ACSCurrent', CreateTime: 1700000000,
    LastRotationDate: {}, NextRotationDate: [], RotationInterval: 604800, AutomaticRotation: false,
    ExtendedConfig: 7,
  };
  const cases = Object.entries(wrong).map(([field, value]) => ({
    name: `${field} of the wrong type`, fault: json(kmsAnswer(secret, { [field]: value })),
  }));
  cases.push({ name: 'VersionStages.VersionStage of the wrong type',
               fault: json(kmsAnswer(secret, { VersionStages: { VersionStage: 'ACSCurrent' } })) });
  cases.push({ name: 'VersionStages.VersionStage[] of the wrong type',
               fault: json(kmsAnswer(secret, { VersionStages: { VersionStage: [1] } })) });
  return cases;
}

function kmsCases(secret) {
  const base = kmsAnswer(secret);
  const deepArrays = `{"SecretName":${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}}`;
  const deepObjects = `${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}`;
  return [
    { name: 'huge body (64 MiB, Content-Length)', fault: { huge_bytes: HUGE_BYTES }, message: /exceeds|larger|limit|bytes/ },
    { name: 'huge body (64 MiB, chunked)', fault: { huge_bytes: HUGE_BYTES, chunked: true }, message: /exceeds|larger|limit|bytes/ },
    { name: 'huge error body (64 MiB, HTTP 500)', fault: { huge_bytes: HUGE_BYTES, chunked: true, status: 500 } },
    { name: `arrays nested ${DEPTH} deep`, fault: { body: deepArrays }, message: /deeper|nest/ },
    { name: `objects nested ${DEPTH} deep`, fault: { body: deepObjects }, message: /deeper|nest/ },
    { name: `error body nested ${DEPTH} deep (HTTP 503)`, fault: { body: deepObjects, status: 503 } },
    { name: 'empty body', fault: { body: '' } },
    { name: 'binary garbage', fault: { body_base64: b64([0x00, 0xff, 0x1f, 0x8b, 0x08, 0x00, 0x7b, 0x22]) } },
    { name: 'JSON null', fault: { body: 'null' } },
    { name: 'JSON array', fault: { body: '[]' } },
    { name: 'JSON string', fault: { body: '"RAMCredentials"' } },
    { name: 'JSON number', fault: { body: '1e999999' } },
    { name: 'trailing garbage after the answer', fault: { body: `${JSON.stringify(base)}}{` } },
    { name: 'invalid UTF-8 in SecretName',
      fault: { body_base64: b64(Buffer.concat([Buffer.from(JSON.stringify(base).replace(secret, 'PLACEHOLDER').split('PLACEHOLDER')[0]),
                                               Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
                                               Buffer.from(JSON.stringify(base).replace(secret, 'PLACEHOLDER').split('PLACEHOLDER')[1])])) } },
    { name: 'invalid UTF-8 in SecretData',
      fault: { body_base64: b64(Buffer.concat([Buffer.from(JSON.stringify({ ...base, SecretData: 'PLACEHOLDER' }).split('PLACEHOLDER')[0]),
                                               Buffer.from('{"AccessKeyId":"LTAI5tX","AccessKeySecret":"'),
                                               Buffer.from([0xed, 0xa0, 0x80, 0xc0, 0xaf]),
                                               Buffer.from('"}'),
                                               Buffer.from(JSON.stringify({ ...base, SecretData: 'PLACEHOLDER' }).split('PLACEHOLDER')[1])])) } },
    { name: 'a lone surrogate escape in SecretData', fault: json(kmsAnswer(secret, {}, { AccessKeySecret: '\ud800abc' })) },
    ...['SecretName', 'SecretData', 'VersionId', 'SecretType'].map((field) => ({
      name: `${field} missing`, fault: json(withoutKey(base, field)),
    })),
    ...wrongTypeCases(secret),
    { name: 'SecretType other than RAMCredentials', fault: json(kmsAnswer(secret, { SecretType: 'Generic' })) },
    { name: 'SecretDataType binary', fault: json(kmsAnswer(secret, { SecretDataType: 'binary' })) },
    { name: 'SecretData not JSON', fault: json(kmsAnswer(secret, { SecretData: 'AccessKeyId=LTAI5tX' })) },
    { name: 'SecretData empty', fault: json(kmsAnswer(secret, { SecretData: '' })) },
    { name: 'SecretData a JSON array', fault: json(kmsAnswer(secret, { SecretData: '[]' })) },
    { name: 'SecretData JSON null', fault: json(kmsAnswer(secret, { SecretData: 'null' })) },
    { name: `SecretData nested ${DEPTH} deep`, fault: json(kmsAnswer(secret, { SecretData: deepObjects })) },
    { name: 'SecretData nested 10000 deep, within its 64 KiB',
      fault: json(kmsAnswer(secret, { SecretData: `${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}` })), message: /JSON/ },
    { name: 'SecretData of 100 KB', fault: json(kmsAnswer(secret, {}, { Padding: 'x'.repeat(100 * 1000) })) },
    { name: 'SecretData.AccessKeyId missing', fault: json(kmsAnswer(secret, { SecretData: JSON.stringify({ AccessKeySecret: 's3cretS3cret' }) })) },
    { name: 'SecretData.AccessKeySecret missing', fault: json(kmsAnswer(secret, { SecretData: JSON.stringify({ AccessKeyId: HOSTILE_KEY_ID }) })) },
    { name: 'SecretData.AccessKeyId a number', fault: json(kmsAnswer(secret, {}, { AccessKeyId: 12345 })) },
    { name: 'SecretData.AccessKeySecret an object', fault: json(kmsAnswer(secret, {}, { AccessKeySecret: { v: 'x' } })) },
    { name: 'SecretData.AccessKeyId empty', fault: json(kmsAnswer(secret, {}, { AccessKeyId: '' })) },
    { name: 'SecretData.AccessKeyId injecting an INI section',
      fault: json(kmsAnswer(secret, {}, { AccessKeyId: 'LTAI5tX\n[evil]\naccess_key_id = LTAIevil' })) },
    // Printable ASCII that the INI writer refuses (operations.md): refused
    // only when the file is rendered, after the fetch counted as a success.
    { name: 'SecretData.AccessKeySecret with comment characters',
      fault: json(kmsAnswer(secret, {}, { AccessKeySecret: 'abc;def#ghi' })) },
    { name: 'SecretData.AccessKeyId with a section bracket',
      fault: json(kmsAnswer(secret, {}, { AccessKeyId: 'LTAI5t[evil]' })) },
    { name: 'SecretData.AccessKeySecret with a NUL', fault: json(kmsAnswer(secret, {}, { AccessKeySecret: 'abc\u0000def' })) },
    { name: 'SecretData.AccessKeySecret of 100 KB', fault: json(kmsAnswer(secret, {}, { AccessKeySecret: 'x'.repeat(100000) })) },
    { name: 'NextRotationDate not a date', fault: json(kmsAnswer(secret, { NextRotationDate: 'tomorrow' })) },
    { name: 'RotationInterval not seconds', fault: json(kmsAnswer(secret, { RotationInterval: '-5s' })) },
  ];
}

function stsCases() {
  const base = stsAnswer();
  const deepObjects = `${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}`;
  return [
    { name: 'huge body (64 MiB, chunked)', fault: { huge_bytes: HUGE_BYTES, chunked: true } },
    { name: 'huge body (64 MiB, Content-Length)', fault: { huge_bytes: HUGE_BYTES } },
    { name: `objects nested ${DEPTH} deep`, fault: { body: deepObjects } },
    { name: 'not JSON', fault: { body: '<html>gateway</html>' } },
    { name: 'JSON array', fault: { body: '[]' } },
    { name: 'Credentials missing', fault: json(withoutKey(base, 'Credentials')) },
    { name: 'Credentials a string', fault: json(stsAnswer({ Credentials: 'x' })) },
    ...['AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration'].flatMap((field) => [
      { name: `Credentials.${field} missing`, fault: json({ ...base, Credentials: withoutKey(base.Credentials, field) }) },
      { name: `Credentials.${field} a number`, fault: json(stsAnswer({}, { [field]: 12345 })) },
    ]),
    { name: 'Credentials.Expiration not a date', fault: json(stsAnswer({}, { Expiration: 'soon' })) },
    { name: 'Credentials.Expiration in the past', fault: json(stsAnswer({}, { Expiration: iso(Date.now() - 60000) })) },
    { name: 'Credentials.SecurityToken injecting a header',
      fault: json(stsAnswer({}, { SecurityToken: 'CAISabc\r\nX-Injected: 1' })) },
    { name: 'Credentials.AccessKeySecret with a NUL', fault: json(stsAnswer({}, { AccessKeySecret: 'abc\u0000def' })) },
    { name: 'invalid UTF-8 in the SecurityToken',
      fault: { body_base64: b64(Buffer.concat([Buffer.from(JSON.stringify(stsAnswer({}, { SecurityToken: 'PLACEHOLDER' })).split('PLACEHOLDER')[0]),
                                               Buffer.from([0xc3, 0x28, 0xff]),
                                               Buffer.from(JSON.stringify(stsAnswer({}, { SecurityToken: 'PLACEHOLDER' })).split('PLACEHOLDER')[1])])) } },
  ];
}

// One emulator and one sidecar; cases run one after another on them.
async function startBed(name) {
  const emu = await startEmulator();
  try {
    return await startBedOn(emu, name);
  } catch (err) {
    await emu.stop();
    throw err;
  }
}

async function startBedOn(emu, name) {
  const secret = `acs/ram/user/${name}`;
  const world = await setUpRrsaWorld(emu, { name, secrets: [secret] });
  const out = path.join(world.dir, 'out');
  const configFile = writeConfig(world.dir, {
    kms: { endpoints: [emu.endpoint] },
    tls: { ca_file: emu.caFile },
    profiles: [{ name: 'default', secret_name: secret }],
    output: { directory: out },
    refresh: {
      interval: '1h', jitter: 0, rotation_jitter: '0s',
      retry_initial_backoff: '200ms', retry_max_backoff: '800ms', on_demand_burst: 1000,
    },
    control: { refresh_timeout: '10s' },
    log: { level: 'debug' },
  });
  const sc = await startSidecar({ configFile, env: world.env, name });
  const socket = await sc.listening('unix');
  const httpAddress = await sc.listening('http');
  const api = connectControl(`unix:${socket}`);
  const file = path.join(out, 'credentials.ini');
  await waitForFile(file);
  const bed = {
    emu, world, sc, api, httpAddress, secret, out, file,
    status: async () => (await api.getStatus()).response,
    snapshot: () => ({ bytes: fs.readFileSync(file), data: fs.readlinkSync(path.join(out, '..data')) }),
    // A Refresh naming the file's key: one fetch, whatever it brings.
    async forceFetch() {
      const current = (await bed.status()).profiles[0].access_key_id;
      return api.refresh({ profile: 'default', failed_access_key_id: current, reason: 'e2e hostile' }, { timeoutMs: 20000 })
        .then((r) => ({ ok: true, response: r.response }), (err) => ({ ok: false, err }));
    },
    // No fault, and the last fetch succeeded with the emulator's real answer.
    async settle() {
      await emu.admin('DELETE', '/admin/faults');
      await until(async () => {
        await bed.forceFetch();
        const status = await bed.status();
        return status.profiles[0].consecutive_failures === 0 &&
               status.profiles[0].access_key_id === world.secrets[secret].access_key_id;
      }, 'a successful fetch after clearing the fault');
    },
    stsSessionIds: () => sc.logs().filter((l) => l.msg === 'STS session obtained').map((l) => l.access_key_id),
    async stop() {
      api.close();
      const stopped = await sc.stop();
      await emu.stop();
      return stopped;
    },
  };
  return bed;
}

// Injects `fault` for `action`, has credsync fetch once, and asserts the
// answer was rejected with everything still standing.
async function expectRejected(bed, action, testCase, prepare = async () => {}) {
  await bed.settle();
  const before = bed.snapshot();
  await bed.emu.admin('DELETE', '/admin/counters');
  await bed.emu.admin('POST', '/admin/faults', { action, kind: 'body', ...testCase.fault });
  try {
    return await checkRejected(bed, action, testCase, before, prepare);
  } finally {
    await bed.emu.admin('DELETE', '/admin/faults');
  }
}

async function checkRejected(bed, action, testCase, before, prepare) {
  await prepare();
  const outcome = await bed.forceFetch();
  const status = await bed.status();
  const profile = status.profiles[0];
  const counters = await bed.emu.admin('GET', '/admin/counters');
  const served = counters.actions?.[action]?.failures?.InjectedBody ?? 0;
  const detail = `${testCase.name}: ${JSON.stringify(profile.last_error)} outcome ${
    outcome.ok ? JSON.stringify(outcome.response) : `${outcome.err.code} ${outcome.err.details}`}`;
  assert.ok(served >= 1, `${testCase.name}: the emulator served no injected body`);
  assert.equal(outcome.ok, false, `${detail}: the Refresh succeeded`);
  assert.ok(profile.last_error && profile.last_error.message, `${detail}: no last_error`);
  assert.ok(profile.consecutive_failures >= 1, detail);
  if (testCase.message) assert.match(profile.last_error.message, testCase.message, detail);
  const after = bed.snapshot();
  assert.ok(after.bytes.equals(before.bytes), `${testCase.name}: credentials.ini changed`);
  assert.equal(after.data, before.data, `${testCase.name}: ..data was swapped`);
  assert.equal(bed.sc.alive(), true, `${testCase.name}: credsync died`);
  assert.equal((await httpGet(bed.httpAddress, '/healthz')).status, 200);
  assert.equal((await httpGet(bed.httpAddress, '/readyz')).status, 200);
  // The identity as it was while the fault was in place: once it is removed,
  // a background retry of the exchange may succeed and clear its last_error.
  return { lastError: profile.last_error, identity: status.identity };
}

describe('hostile upstream bodies', { concurrency: true }, () => {
  // Verifies credsync rejects every hostile GetSecretValue body.
  describe('KMS GetSecretValue', { concurrency: 1 }, () => {
    let bed;
    const figures = { cases: 0, rejected: 0, errors: {} };
    before(async () => { bed = await startBed(KMS_BED); });
    after(async () => {
      if (!bed) return;
      const stopped = await bed.stop();
      process.stdout.write(`HOSTILE-FIGURES ${JSON.stringify({ action: 'GetSecretValue', ...figures })}\n`);
      assert.equal(stopped.code, 0, bed.sc.stderr().slice(-4000));
    });

    // Verifies the unmutated answer is accepted: its key reaches the file.
    it('control: the valid answer is accepted', async () => {
      await bed.emu.admin('POST', '/admin/faults',
                          { action: 'GetSecretValue', kind: 'body', ...json(kmsAnswer(bed.secret)) });
      const outcome = await bed.forceFetch();
      await bed.emu.admin('DELETE', '/admin/faults');
      assert.equal(outcome.ok, true, outcome.err?.details);
      assert.equal(outcome.response.access_key_id, HOSTILE_KEY_ID);
      await waitForFile(bed.file, (text) => text.includes(`access_key_id = ${HOSTILE_KEY_ID}\n`), 5000);
    });

    // Verifies each hostile body is rejected, one after another on one
    // sidecar, and peak memory stays bounded.
    it('every hostile body is rejected', async () => {
      const hwmBefore = vmHwmKib(bed.sc.pid);
      for (const testCase of kmsCases(bed.secret)) {
        const { lastError: error } = await expectRejected(bed, 'GetSecretValue', testCase);
        figures.cases += 1;
        figures.rejected += 1;
        figures.errors[testCase.name] = `${error.code}: ${error.message}`.slice(0, 200);
      }
      const hwm = vmHwmKib(bed.sc.pid);
      Object.assign(figures, { vm_hwm_kib_before: hwmBefore, vm_hwm_kib_after: hwm });
      assert.ok(hwm < MAX_HWM_KIB, `VmHWM ${hwm} KiB after the hostile bodies`);
      assert.ok(hwm - hwmBefore < MAX_HWM_GROWTH_KIB,
                `VmHWM grew by ${hwm - hwmBefore} KiB over the hostile bodies`);
    });

  });

  // Verifies credsync rejects every hostile AssumeRoleWithOIDC body. KMS is
  // made to refuse the current session first (the emulator revokes it), so
  // credsync has to exchange its token and meets the hostile answer.
  describe('STS AssumeRoleWithOIDC', { concurrency: 1 }, () => {
    let bed;
    const figures = { cases: 0, rejected: 0, errors: {} };
    before(async () => { bed = await startBed('hostilests'); });
    after(async () => {
      if (!bed) return;
      const stopped = await bed.stop();
      process.stdout.write(`HOSTILE-FIGURES ${JSON.stringify({ action: 'AssumeRoleWithOIDC', ...figures })}\n`);
      assert.equal(stopped.code, 0, bed.sc.stderr().slice(-4000));
    });

    const revokeSession = async () => {
      const ids = bed.stsSessionIds();
      const id = ids[ids.length - 1];
      await bed.emu.request('POST', `/admin/access-keys/${encodeURIComponent(id)}/revoke`);
    };

    // Verifies the unmutated answer is accepted: credsync installs the session.
    it('control: the valid answer is accepted', async () => {
      await bed.settle();
      await bed.emu.admin('POST', '/admin/faults',
                          { action: 'AssumeRoleWithOIDC', kind: 'body', ...json(stsAnswer()) });
      await revokeSession();
      await bed.forceFetch();
      await bed.emu.admin('DELETE', '/admin/faults');
      assert.ok(bed.stsSessionIds().includes(HOSTILE_STS_ID), 'the valid STS answer was not installed');
    });

    // Verifies each hostile body is rejected and no session is installed
    // from it; peak memory stays bounded.
    it('every hostile body is rejected', async () => {
      const hwmBefore = vmHwmKib(bed.sc.pid);
      for (const testCase of stsCases()) {
        await bed.settle();
        const installed = bed.stsSessionIds().filter((id) => id === HOSTILE_STS_ID).length;
        const { lastError: error, identity } =
          await expectRejected(bed, 'AssumeRoleWithOIDC', testCase, revokeSession);
        assert.ok(identity.last_error && identity.last_error.message, `${testCase.name}: no identity last_error`);
        assert.equal(bed.stsSessionIds().filter((id) => id === HOSTILE_STS_ID).length, installed,
                     `${testCase.name}: credsync installed the hostile session`);
        figures.cases += 1;
        figures.rejected += 1;
        figures.errors[testCase.name] = `${error.code}: ${error.message}`.slice(0, 200);
      }
      const hwm = vmHwmKib(bed.sc.pid);
      Object.assign(figures, { vm_hwm_kib_before: hwmBefore, vm_hwm_kib_after: hwm });
      assert.ok(hwm < MAX_HWM_KIB, `VmHWM ${hwm} KiB after the hostile bodies`);
      assert.ok(hwm - hwmBefore < MAX_HWM_GROWTH_KIB,
                `VmHWM grew by ${hwm - hwmBefore} KiB over the hostile bodies`);
    });
  });
});
