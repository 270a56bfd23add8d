// The emulator's KMS instance gateway (dkms-gcs-0.2) with a client key, end
// to end and without the sidecar: a client key from the admin API, opened
// from its PKCS#12 with the openssl CLI as an SDK opens it, a GetSecretValue
// signed the way the official SDKs sign it (docs/research/kms-instance-api.md
// §2, §3), over TLS that trusts only the instance CA. There is no Node KMS
// instance SDK (research, intro), so the client is written here: node:crypto
// signs, and a few lines encode and decode the protobuf fields.

import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { startEmulator } from './emulator.mjs';

const SECRET = 'acs/ram/user/instance-app';
const OTHER_SECRET = 'acs/ram/user/other-app';

// --- protobuf, just the wire format GetSecretValue needs ---------------------

function varint(value) {
  const bytes = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

// GetSecretValueRequest{SecretName=1, VersionStage=2, VersionId=3,
// FetchExtendedConfig=4}; proto3 leaves defaults out.
function encodeGetSecretValueRequest({ secretName, versionStage, versionId, fetchExtendedConfig }) {
  const parts = [];
  for (const [field, value] of [[1, secretName], [2, versionStage], [3, versionId]]) {
    if (!value) continue;
    const bytes = Buffer.from(value, 'utf8');
    parts.push(varint((field << 3) | 2), varint(bytes.length), bytes);
  }
  if (fetchExtendedConfig) parts.push(varint((4 << 3) | 0), varint(1));
  return Buffer.concat(parts);
}

// Decodes a message into {fieldNumber: [values]}: strings for
// length-delimited fields, numbers for varints.
function decodeMessage(buffer) {
  const fields = {};
  let offset = 0;
  const readVarint = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      assert.ok(offset < buffer.length, 'truncated varint');
      const byte = buffer[offset++];
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (offset < buffer.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    let value;
    if (wireType === 0) {
      value = readVarint();
    } else if (wireType === 2) {
      const length = readVarint();
      value = buffer.subarray(offset, offset + length).toString('utf8');
      offset += length;
    } else {
      throw new Error(`unexpected wire type ${wireType}`);
    }
    (fields[field] ||= []).push(value);
  }
  return fields;
}

function decodeResponse(buffer) {
  const f = decodeMessage(buffer);
  const one = (n) => (f[n] ? f[n][0] : '');
  return {
    SecretName: one(1), SecretType: one(2), SecretData: one(3), SecretDataType: one(4),
    VersionStages: f[5] || [], VersionId: one(6), CreateTime: one(7), RequestId: one(8),
    LastRotationDate: one(9), NextRotationDate: one(10), ExtendedConfig: one(11),
    AutomaticRotation: one(12), RotationInterval: one(13),
  };
}

function decodeError(buffer) {
  const f = decodeMessage(buffer);
  return {
    StatusCode: f[1] ? f[1][0] : 0,
    ErrorCode: f[2] ? f[2][0] : '',
    ErrorMessage: f[3] ? f[3][0] : '',
    RequestId: f[4] ? f[4][0] : '',
  };
}

// --- the client key, as an SDK loads it ---------------------------------------

// The RSA key inside a client key file's PKCS#12, via the openssl CLI (its
// certificate bag is RC2-40, hence -legacy: research §4.1).
function privateKeyOf(clientKey, password, workDir) {
  const p12 = path.join(workDir, `${clientKey.KeyId}.p12`);
  fs.writeFileSync(p12, Buffer.from(clientKey.PrivateKeyData, 'base64'), { mode: 0o600 });
  const pem = execFileSync('openssl', ['pkcs12', '-legacy', '-in', p12, '-nocerts', '-nodes',
                                        '-passin', `pass:${password}`], { encoding: 'utf8' });
  return crypto.createPrivateKey(pem);
}

function pkcs12Info(clientKey, password, workDir) {
  const p12 = path.join(workDir, `${clientKey.KeyId}-info.p12`);
  fs.writeFileSync(p12, Buffer.from(clientKey.PrivateKeyData, 'base64'), { mode: 0o600 });
  // openssl prints the -info lines on stderr.
  const run = spawnSync('openssl', ['pkcs12', '-legacy', '-in', p12, '-info', '-noout',
                                    '-passin', `pass:${password}`], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout + run.stderr;
}

// --- the request, as the SDKs build it (research §2, §3) ---------------------

function httpDate(date) {
  return date.toUTCString();  // "Tue, 24 Nov 2026 17:00:00 GMT", like Go's http.TimeFormat
}

// Signs and sends GetSecretValue. `tamper` may change {headers, body,
// signWith, keyId, date} before sending. Resolves {status, body (Buffer)}.
function getSecretValue(instance, { keyId, privateKey, request, ca, tamper = {} }) {
  const body = tamper.body ?? encodeGetSecretValueRequest(request);
  const headers = {
    'Accept': 'application/x-protobuf',
    'Host': instance.endpoint,
    'Date': tamper.date ?? httpDate(new Date()),
    'User-Agent': 'credsync-e2e (node) kms-instance-test',
    // Go's net/http canonicalises the SDK's lower-case names like this; the
    // gateway must match them case-insensitively (research §2).
    'X-Kms-Apiversion': 'dkms-gcs-0.2',
    'X-Kms-Apiname': 'GetSecretValue',
    'X-Kms-Signaturemethod': 'RSA_PKCS1_SHA_256',
    'X-Kms-Acccesskeyid': tamper.keyId ?? keyId,
    'Content-Type': 'application/x-protobuf',
    'Content-Length': String(body.length),
    'Content-Sha256': crypto.createHash('sha256').update(body).digest('hex').toUpperCase(),
    ...(tamper.headers || {}),
  };
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const kmsHeaders = Object.keys(lower).filter((k) => k.startsWith('x-kms-')).sort()
      .map((k) => `${k}:${String(lower[k]).trim()}\n`).join('');
  const stringToSign = `POST\n${lower['content-sha256'] ?? ''}\n${lower['content-type'] ?? ''}\n` +
                       `${lower.date ?? ''}\n${kmsHeaders}/`;
  const signature = crypto.sign('sha256', Buffer.from(stringToSign, 'utf8'),
                                tamper.signWith ?? privateKey).toString('base64');
  headers.Authorization = `Bearer ${signature}`;
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: instance.port,
      servername: instance.endpoint,
      method: 'POST',
      path: '/',
      headers,
      ca: ca ?? instance.ca,
      agent: false,
      timeout: 15000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('KMS instance gateway with a client key', () => {
  let emu;
  let instance;
  let instance2;
  let workDir;
  let created;
  let privateKey;

  const call = (overrides = {}) => getSecretValue(overrides.instance ?? instance, {
    keyId: created.key_id,
    privateKey,
    request: { secretName: SECRET, versionStage: 'ACSCurrent', fetchExtendedConfig: true },
    ...overrides,
  });

  before(async () => {
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-kms-instance-'));
    emu = await startEmulator({
      kmsInstances: ['kst-hzz0001', 'kst-hzz0002'],
      seed: { secrets: [{ name: SECRET }, { name: OTHER_SECRET }] },
    });
    instance = emu.kmsInstance('kst-hzz0001');
    instance2 = emu.kmsInstance('kst-hzz0002');
    created = await emu.admin('POST', '/admin/kms-instance/client-keys',
                              { secrets: [SECRET, 'acs/ram/user/missing'], password: 'e2e-pw-1' });
    privateKey = privateKeyOf(created.client_key, created.password, workDir);
  });

  after(async () => {
    await emu?.stop();
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  test('the admin API hands out the console download: key file, password file, PKCS#12 like the official one', () => {
    assert.match(created.key_id, /^KAAP\.[0-9a-f-]{36}$/);
    assert.deepEqual(Object.keys(created.client_key), ['KeyId', 'PrivateKeyData']);
    assert.equal(created.client_key.KeyId, created.key_id);
    assert.equal(created.password, 'e2e-pw-1');
    assert.deepEqual(JSON.parse(fs.readFileSync(created.client_key_file, 'utf8')), created.client_key);
    assert.equal(fs.readFileSync(created.password_file, 'utf8'), 'e2e-pw-1');
    assert.equal(fs.statSync(created.client_key_file).mode & 0o777, 0o600);
    const info = pkcs12Info(created.client_key, created.password, workDir);
    assert.match(info, /MAC: sha1, Iteration 1/);
    assert.match(info, /PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC, Iteration 2048/);
    assert.match(info, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
    assert.equal(privateKey.asymmetricKeyDetails.modulusLength, 2048);
  });

  test('GET /admin/kms-instances lists the gateways and the instance CA', async () => {
    const listed = await emu.admin('GET', '/admin/kms-instances');
    assert.equal(listed.ca_file, instance.caFile);
    assert.deepEqual(listed.instances.map((i) => [i.id, i.port, i.endpoint]), [
      ['kst-hzz0001', instance.port, 'kst-hzz0001.cryptoservice.kms.aliyuncs.com'],
      ['kst-hzz0002', instance2.port, 'kst-hzz0002.cryptoservice.kms.aliyuncs.com'],
    ]);
  });

  test('a signed GetSecretValue gets the secret, on every instance', async () => {
    const admin = await emu.admin('GET', `/admin/secrets/${encodeURIComponent(SECRET)}`);
    for (const target of [instance, instance2]) {
      const res = await call({ instance: target });
      assert.equal(res.status, 200, decodeError(res.body).ErrorMessage);
      const value = decodeResponse(res.body);
      assert.equal(value.SecretName, SECRET);
      assert.equal(value.SecretType, 'RAMCredentials');
      assert.equal(value.SecretDataType, 'text');
      assert.deepEqual(value.VersionStages, ['ACSCurrent']);
      assert.equal(value.VersionId, admin.versions.at(-1).version_id);
      assert.equal(JSON.parse(value.SecretData).AccessKeyId, admin.versions.at(-1).access_key_id);
      assert.equal(JSON.parse(value.ExtendedConfig).SecretSubType, 'RamUserAccessKey');
      assert.equal(value.RotationInterval, '604800s');
      assert.match(value.RequestId, /^[0-9a-f-]{36}$/);
    }
  });

  test('after a rotation ACSPrevious and ACSCurrent follow', async () => {
    const before = decodeResponse((await call()).body);
    await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
    const previous = decodeResponse((await call({
      request: { secretName: SECRET, versionStage: 'ACSPrevious' } })).body);
    assert.equal(previous.VersionId, before.VersionId);
    assert.deepEqual(previous.VersionStages, ['ACSPrevious']);
    const current = decodeResponse((await call()).body);
    assert.notEqual(current.VersionId, before.VersionId);
  });

  async function expectError(resPromise, status, code, message) {
    const res = await resPromise;
    assert.equal(res.status, status);
    const error = decodeError(res.body);
    assert.equal(error.StatusCode, status);
    assert.equal(error.ErrorCode, code);
    if (message) assert.equal(error.ErrorMessage, message);
    assert.ok(error.RequestId);
  }

  test('a signature by another key is 401 SignatureNotMatch', async () => {
    const { privateKey: otherKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    await expectError(call({ tamper: { signWith: otherKey } }), 401, 'SignatureNotMatch',
                      'Signature is not matched.');
  });

  test('another client key id is 404 Unauthorized, and so is a disabled key', async () => {
    const other = await emu.admin('POST', '/admin/kms-instance/client-keys', { secrets: ['*'] });
    // Signed with our key but claiming the other's id: the signature fails.
    await expectError(call({ tamper: { keyId: other.key_id } }), 401, 'SignatureNotMatch');
    await expectError(call({ tamper: { keyId: 'KAAP.00000000-0000-0000-0000-000000000000' } }),
                      404, 'Unauthorized',
                      'The AccessKey ID "KAAP.00000000-0000-0000-0000-000000000000" does not exist in our records.');
    await emu.admin('POST', `/admin/kms-instance/client-keys/${other.key_id}/disable`, {});
    const otherKey = privateKeyOf(other.client_key, other.password, workDir);
    await expectError(call({ keyId: other.key_id, privateKey: otherKey }), 404, 'Unauthorized');
    await emu.admin('POST', `/admin/kms-instance/client-keys/${other.key_id}/enable`, {});
    assert.equal((await call({ keyId: other.key_id, privateKey: otherKey })).status, 200);
  });

  test('a Date 20 minutes off is 400 RequestTimeTooSkewed', async () => {
    await expectError(call({ tamper: { date: httpDate(new Date(Date.now() - 20 * 60 * 1000)) } }),
                      400, 'RequestTimeTooSkewed',
                      'Request time exceeds server time more than 15 minutes.');
    await expectError(call({ tamper: { date: 'yesterday' } }), 400, 'InvalidParam',
                      'The Param Date is invalid.');
  });

  test('a content-sha256 that is not the body\'s is refused', async () => {
    await expectError(call({ tamper: { headers: { 'Content-Sha256': '00'.repeat(32) } } }),
                      400, 'InvalidParam', 'The Param Content-SHA256 is invalid.');
  });

  test('a secret outside the client key\'s list is 403, an unknown one 404', async () => {
    await expectError(call({ request: { secretName: OTHER_SECRET } }), 403, 'Forbidden.NoPermission');
    await expectError(call({ request: { secretName: 'acs/ram/user/missing' } }), 404,
                      'Forbidden.ResourceNotFound');
  });

  test('other methods, other paths and bodies over 3 MB get a protobuf Error too', async () => {
    const raw = (method, requestPath, body) => new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: instance.port, servername: instance.endpoint, method,
        path: requestPath, ca: instance.ca, agent: false,
        headers: body ? { 'content-type': 'application/x-protobuf', 'content-length': body.length } : {},
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
    for (const [method, requestPath, body, status] of [
      ['GET', '/', undefined, 405],
      ['POST', '/v1/getSecretValue', Buffer.alloc(1), 404],
      ['POST', '/', Buffer.alloc(3 * 1024 * 1024 + 1), 413],
    ]) {
      const res = await raw(method, requestPath, body);
      assert.equal(res.status, status, `${method} ${requestPath}`);
      assert.equal(decodeError(res.body).StatusCode, status);
    }
  });

  test('the wrong CA fails the TLS handshake', async () => {
    await assert.rejects(call({ ca: emu.ca }), (err) => {
      // The chain ends in the instance root, which the test CA file lacks.
      assert.match(`${err.code} ${err.message}`, /ISSUER|LEAF_SIGNATURE|unable to get/i);
      return true;
    });
  });

  test('a fault aimed at one instance fails only that instance, counted per instance', async () => {
    await emu.admin('DELETE', '/admin/counters');
    await emu.admin('POST', '/admin/faults',
                    { action: 'GetSecretValue', kind: 'http_5xx', instance: 'kst-hzz0001', count: 1 });
    await expectError(call(), 503, 'ServiceUnavailableTemporary', 'Service Unavailable Temporary.');
    assert.equal((await call({ instance: instance2 })).status, 200);
    assert.equal((await call()).status, 200);
    await emu.admin('POST', '/admin/faults', { action: '*', kind: 'reset', instance: '*', count: 1 });
    await assert.rejects(call({ instance: instance2 }));
    const counters = (await emu.admin('GET', '/admin/counters')).actions;
    assert.deepEqual(counters['kst-hzz0001/GetSecretValue'],
                     { requests: 2, successes: 1, failures: { ServiceUnavailableTemporary: 1 } });
    assert.deepEqual(counters['kst-hzz0002/GetSecretValue'],
                     { requests: 2, successes: 1, failures: { ConnectionReset: 1 } });
    await emu.admin('DELETE', '/admin/faults');
  });

  test('the emulator never logs the client key\'s password or key data', () => {
    const log = emu.stderrTail(1 << 24);
    assert.ok(!log.includes(created.password));
    assert.ok(!log.includes(created.client_key.PrivateKeyData.slice(0, 64)));
  });
});
