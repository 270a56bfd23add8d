// The emulator's faithfulness, proven by the official Alibaba Cloud SDKs from
// npm (pinned in package.json) running against it over HTTPS.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_sdk_fidelity), which
// builds the emulator's PKI first and sets NODE_EXTRA_CA_CERTS to its CA: the
// SDKs trust the emulator the way they would trust a corporate CA, with no
// test-only switch in them.
//
// One emulator serves the whole file; each test builds the part of the world
// it needs (keys, secrets, sessions) under its own names, and tests that
// inject faults clear them when they end.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startEmulator } from './emulator.mjs';
import { callRpc, makeOpenApiClient } from './sdk_clients.mjs';

const require = createRequire(import.meta.url);
const RPCClient = require('@alicloud/pop-core').RPCClient;
const KmsClient = require('@alicloud/kms20160120').default;
const StsClient = require('@alicloud/sts20150401').default;
const { AssumeRoleWithOIDCRequest } = require('@alicloud/sts20150401');
const openApiCore = require('@alicloud/openapi-core');
const OpenApiClient = openApiCore.default;
const { $OpenApiUtil } = openApiCore;
const credentialsPkg = require('@alicloud/credentials');
const Credential = credentialsPkg.default;
const CredentialConfig = credentialsPkg.Config;

// The world this file builds through the admin API.
const ACCOUNT = '1234567890123456';
const REGION = 'cn-hangzhou';
const ISSUER = 'https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/ce2e';
const PROVIDER_ARN = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-ce2e`;
const SUBJECT = 'system:serviceaccount:default:e2e';
const ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-e2e`;
const NO_PERMISSION_ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-e2e-nothing`;
const SECRET = 'acs/ram/user/e2e-app';
const OTHER_SECRET = 'acs/ram/user/e2e-other';
const KMS_VERSION = '2016-01-20';
const ECS_VERSION = '2014-05-26';

// Every response carries a RequestId, a UUID; the README (and the real
// gateway) make it uppercase, which one test checks for every action.
const REQUEST_ID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/i;
const UPPERCASE_REQUEST_ID = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;
const UTC_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const SIGNATURE_MISMATCH_PREFIX =
    'Specified signature is not matched with our calculation. server string to sign is:';

let emu;
let tmpDir;
let secretKey;      // the ACSCurrent key of SECRET when the file starts
let allSecretsKey;  // a static RAM-user key that may read every secret

// Every secret value this file saw the emulator hand out (access key secrets,
// session secrets, security tokens, OIDC tokens): none may be in its log.
const handedOut = new Set();
function remember(...values) {
  for (const value of values) if (typeof value === 'string' && value.length >= 8) handedOut.add(value);
}
function rememberFromAdmin(answer) {
  if (answer && typeof answer === 'object') remember(answer.access_key_secret, answer.token);
  return answer;
}

// Runs a test body (at most a minute) and, if it fails, appends the
// emulator's recent stderr.
function it(name, fn) {
  test(name, { timeout: 60000 }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      if (emu && err && typeof err === 'object') {
        const log = emu.stderrTail(6000);
        try {
          err.message = `${err.message}\n--- emulator stderr (tail of ${emu.stderrFile}) ---\n${log}`;
        } catch {
          // Some errors have a read-only message; the log file stays on disk.
        }
      }
      throw err;
    }
  });
}

// ---------------------------------------------------------------------------
// Clients, each built the way its README says, pointed at the emulator.

function popClient(creds, apiVersion, verbose = false) {
  return new RPCClient({
    endpoint: emu.url,  // pop-core needs the scheme
    apiVersion,
    accessKeyId: creds.accessKeyId,
    accessKeySecret: creds.accessKeySecret,
    securityToken: creds.securityToken,
  }, verbose);
}

function kmsClient(creds) {
  return new KmsClient({
    accessKeyId: creds.accessKeyId,
    accessKeySecret: creds.accessKeySecret,
    securityToken: creds.securityToken,
    credential: creds.credential,
    endpoint: emu.endpoint,
    protocol: 'https',
    regionId: REGION,
  });
}

// openapi-core against this file's emulator (sdk_clients.mjs).
function openApiClient(creds, signatureAlgorithm) {
  return makeOpenApiClient(emu.endpoint, creds, signatureAlgorithm);
}

function stsClient() {
  return new StsClient(new $OpenApiUtil.Config({ endpoint: emu.endpoint, protocol: 'https' }));
}

const staticCreds = (key) => ({ accessKeyId: key.access_key_id, accessKeySecret: key.access_key_secret });
const sessionCreds = (c) => ({
  accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, securityToken: c.securityToken,
});

// ---------------------------------------------------------------------------
// Admin helpers.

const secretPath = (name) => `/admin/secrets/${encodeURIComponent(name)}`;

async function newAccessKey(secrets = ['*']) {
  const key = await emu.admin('POST', '/admin/access-keys', { secrets });
  assert.match(key.access_key_id, /\S/);
  assert.match(key.access_key_secret, /\S/);
  return key;
}

async function mintToken(overrides = {}) {
  const minted = await emu.admin('POST', '/admin/oidc/tokens',
                                 { subject: SUBJECT, issuer: ISSUER, ...overrides });
  assert.equal(typeof minted.token, 'string');
  return minted.token;
}

async function assumeRole({ roleArn = ROLE_ARN, sessionName = 'e2e-session', token, durationSeconds,
                            providerArn = PROVIDER_ARN } = {}) {
  const response = await stsClient().assumeRoleWithOIDC(new AssumeRoleWithOIDCRequest({
    roleArn,
    OIDCProviderArn: providerArn,
    OIDCToken: token ?? await mintToken(),
    roleSessionName: sessionName,
    durationSeconds,
  }));
  assert.equal(response.statusCode, 200);
  remember(response.body.credentials?.accessKeySecret, response.body.credentials?.securityToken);
  return response.body;
}

// ---------------------------------------------------------------------------
// Assertion helpers.

async function errorOf(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('the call succeeded; it should have failed');
}

// The POP error code, whichever SDK raised it (pop-core: err.code; tea:
// err.data.Code, err.code carries an "Error" suffix in the old tea clients).
const apiCode = (err) => err?.data?.Code ?? err?.code;
const apiMessage = (err) => err?.data?.Message ?? err?.message;

// The HTTP status, whichever SDK raised it.
function httpStatus(err) {
  if (typeof err?.statusCode === 'number') return err.statusCode;
  if (err?.entry?.response?.statusCode) return err.entry.response.statusCode;  // pop-core
  // rpc-client (kms20160120) has no statusCode, only "code: 404, ..." in its message.
  const m = /(?:^|: )code: (\d{3}),/.exec(err?.message ?? '');
  return m ? Number(m[1]) : undefined;
}

function assertApiError(err, code, status) {
  assert.equal(apiCode(err), code, `error: ${err?.stack ?? err}\ndata: ${JSON.stringify(err?.data)}`);
  if (status !== undefined) assert.equal(httpStatus(err), status, `error: ${err?.message}`);
  if (err?.data) {
    assert.match(err.data.RequestId, REQUEST_ID);
    assert.equal(typeof err.data.HostId, 'string');
    assert.equal(typeof err.data.Message, 'string');
    assert.ok(String(err.data.Recommend).startsWith(`https://api.aliyun.com/troubleshoot?q=${code}&`),
              `Recommend: ${err.data.Recommend}`);
  }
}

// RFC 3986 percent-encoding as the RPC signature defines it.
function rpcEncode(value) {
  return encodeURIComponent(value).replace(/[!'()*]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// The HMAC-SHA1 RPC StringToSign of a query string (Signature excluded).
function rpcStringToSign(method, rawQuery) {
  const params = [...new URLSearchParams(rawQuery)].filter(([k]) => k !== 'Signature');
  params.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = params.map(([k, v]) => `${rpcEncode(k)}=${rpcEncode(v)}`).join('&');
  return `${method}&${rpcEncode('/')}&${rpcEncode(canonical)}`;
}

function serverStringToSign(err) {
  const message = apiMessage(err);
  assert.ok(message.startsWith(SIGNATURE_MISMATCH_PREFIX), `message: ${message}`);
  return message.slice(SIGNATURE_MISMATCH_PREFIX.length);
}

function assertRamCredentialsSecret(body, { name, accessKeyId, accessKeySecret, stage = 'ACSCurrent' }) {
  assert.match(body.RequestId, REQUEST_ID);
  assert.equal(body.SecretName, name);
  assert.equal(body.SecretType, 'RAMCredentials');
  assert.equal(body.SecretDataType, 'text');
  assert.equal(typeof body.VersionId, 'string');
  assert.ok(Array.isArray(body.VersionStages?.VersionStage), JSON.stringify(body.VersionStages));
  assert.ok(body.VersionStages.VersionStage.includes(stage), JSON.stringify(body.VersionStages));
  const data = JSON.parse(body.SecretData);
  assert.equal(data.AccessKeyId, accessKeyId);
  if (accessKeySecret !== undefined) assert.equal(data.AccessKeySecret, accessKeySecret);
  assert.equal(typeof data.AccessKeySecret, 'string');
  assert.ok(data.GenerateTimestamp, `SecretData without GenerateTimestamp: ${Object.keys(data)}`);
  return data;
}

// ---------------------------------------------------------------------------

before(async () => {
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  if (!extraCa) {
    throw new Error('NODE_EXTRA_CA_CERTS is not set: run this suite through tests/e2e/node/run.sh ' +
                    '(ctest -R e2e_node_sdk_fidelity), which trusts the emulator\'s test CA');
  }
  emu = await startEmulator({ logLevel: 'debug' });
  const admin = emu.admin;
  emu.admin = async (...args) => rememberFromAdmin(await admin(...args));
  if (!fs.readFileSync(extraCa).equals(emu.ca)) {
    throw new Error(`NODE_EXTRA_CA_CERTS=${extraCa} is not the CA of the emulator under test ` +
                    `(${emu.caFile}): the emulator did not reuse the PKI copied into its state dir`);
  }
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-e2e-node-'));

  await emu.admin('POST', '/admin/oidc-providers',
                  { arn: PROVIDER_ARN, issuer: ISSUER, audiences: ['sts.aliyuncs.com'] });
  secretKey = await emu.admin('POST', '/admin/secrets',
                              { name: SECRET, rotation_interval_seconds: 604800, user_name: 'e2e-app' });
  await emu.admin('POST', '/admin/secrets', { name: OTHER_SECRET, user_name: 'e2e-other' });
  await emu.admin('POST', '/admin/roles', {
    arn: ROLE_ARN, oidc_provider_arn: PROVIDER_ARN, subjects: [SUBJECT], secrets: [SECRET],
    max_session_duration_seconds: 3600,
  });
  await emu.admin('POST', '/admin/roles', {
    arn: NO_PERMISSION_ROLE_ARN, oidc_provider_arn: PROVIDER_ARN, subjects: [SUBJECT], secrets: [],
    max_session_duration_seconds: 3600,
  });
  allSecretsKey = await newAccessKey(['*']);
});

after(async () => {
  if (emu) {
    await emu.admin('DELETE', '/admin/faults').catch(() => {});
    await emu.stop();
  }
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------

describe('admin API', () => {
  // Verifies the admin API answers health over HTTPS with the test CA, and the
  // secret created at setup is listed with one ACSCurrent version.
  it('health and secret listing', async () => {
    assert.deepEqual(await emu.admin('GET', '/admin/health'), { ok: true });
    const listed = await emu.admin('GET', secretPath(SECRET));
    assert.equal(listed.name, SECRET);
    assert.equal(listed.versions.length, 1);
    assert.equal(listed.versions[0].access_key_id, secretKey.access_key_id);
    assert.equal(listed.versions[0].version_id, secretKey.version_id);
    assert.ok(listed.versions[0].stages.includes('ACSCurrent'));
  });
});

describe('response envelope', () => {
  // Verifies every answer, success or error, of every action carries an
  // uppercase UUID RequestId, as the README and the real gateway do.
  it('RequestId is an uppercase UUID everywhere', async () => {
    const client = openApiClient(staticCreds(allSecretsKey));
    const rotateName = 'acs/ram/user/e2e-request-id';
    await emu.admin('POST', '/admin/secrets', { name: rotateName });
    const ids = {
      GetSecretValue: (await callRpc(client, 'GetSecretValue', KMS_VERSION, { SecretName: SECRET })).RequestId,
      RotateSecret: (await callRpc(client, 'RotateSecret', KMS_VERSION,
                                   { SecretName: rotateName, VersionId: 'e2e-request-id-v2' })).RequestId,
      DescribeRegions: (await callRpc(client, 'DescribeRegions', ECS_VERSION, {})).RequestId,
      AssumeRoleWithOIDC: (await assumeRole({ sessionName: 'request-id' })).requestId,
      'GetSecretValue error': (await errorOf(callRpc(client, 'GetSecretValue', KMS_VERSION,
                                                     { SecretName: 'acs/ram/user/none' }))).data?.RequestId,
    };
    const wrong = Object.entries(ids).filter(([, id]) => !UPPERCASE_REQUEST_ID.test(String(id)));
    assert.deepEqual(Object.fromEntries(wrong), {}, 'RequestIds that are not uppercase UUIDs');
  });
});

describe('@alicloud/pop-core RPCClient (HMAC-SHA1)', () => {
  // Verifies pop-core's default GET form (every parameter in the query,
  // signed HMAC-SHA1) reads a RAMCredentials secret with a static key.
  it('GET GetSecretValue with a static key', async () => {
    const body = await popClient(staticCreds(allSecretsKey), KMS_VERSION)
        .request('GetSecretValue', { SecretName: SECRET });
    assertRamCredentialsSecret(body, { name: SECRET, accessKeyId: secretKey.access_key_id,
                                       accessKeySecret: secretKey.access_key_secret });
  });

  // Verifies pop-core's POST form (parameters in an x-www-form-urlencoded
  // body, the signature over them) reads the same secret.
  it('POST GetSecretValue with a static key', async () => {
    const body = await popClient(staticCreds(allSecretsKey), KMS_VERSION)
        .request('GetSecretValue', { SecretName: SECRET }, { method: 'POST' });
    assertRamCredentialsSecret(body, { name: SECRET, accessKeyId: secretKey.access_key_id });
  });

  // Verifies the ECS-style target service answers DescribeRegions to pop-core
  // by GET and by POST, with the emulator's region in the list.
  it('DescribeRegions by GET and POST', async () => {
    const client = popClient(staticCreds(allSecretsKey), ECS_VERSION);
    for (const opts of [{}, { method: 'POST' }]) {
      const body = await client.request('DescribeRegions', {}, opts);
      assert.match(body.RequestId, REQUEST_ID);
      const regions = body.Regions.Region;
      assert.ok(Array.isArray(regions) && regions.length > 0, JSON.stringify(body));
      const region = regions.find((r) => r.RegionId === REGION);
      assert.ok(region, JSON.stringify(regions));
      assert.equal(typeof region.LocalName, 'string');
      assert.equal(typeof region.RegionEndpoint, 'string');
    }
  });

  // Verifies an STS session key plus its SecurityToken query parameter is
  // accepted on the RPC path by the target service.
  it('DescribeRegions with an STS session', async () => {
    const session = await assumeRole({ sessionName: 'pop-core' });
    const body = await popClient(sessionCreds(session.credentials), ECS_VERSION).request('DescribeRegions', {});
    assert.ok(body.Regions.Region.length > 0);
  });

  // Verifies a product called with another product's API version is refused
  // with InvalidVersion.
  it('InvalidVersion for a version that is not the product\'s', async () => {
    const err = await errorOf(popClient(staticCreds(allSecretsKey), ECS_VERSION)
        .request('GetSecretValue', { SecretName: SECRET }));
    assertApiError(err, 'InvalidVersion', 400);
  });

  // Verifies a replayed request (same SignatureNonce, same valid signature)
  // is refused with SignatureNonceUsed, as the gateway does.
  it('a replayed request gets SignatureNonceUsed', async () => {
    const [body, entry] = await popClient(staticCreds(allSecretsKey), ECS_VERSION, true)
        .request('DescribeRegions', {});
    assert.ok(body.Regions.Region.length > 0);
    const sentPath = new URL(entry.url).pathname + new URL(entry.url).search;
    const replay = await emu.request('GET', sentPath);
    assert.equal(replay.status, 400, replay.text);
    assert.equal(replay.json?.Code, 'SignatureNonceUsed', replay.text);
  });
});

describe('@alicloud/kms20160120 1.2.0 (RPC client, HMAC-SHA1)', () => {
  // Verifies the generated KMS client reads the secret with a static key.
  it('getSecretValue with a static key', async () => {
    const res = await kmsClient(staticCreds(allSecretsKey)).getSecretValue({ SecretName: SECRET });
    assert.match(res.requestId, REQUEST_ID);
    assert.equal(res.secretName, SECRET);
    assert.equal(res.secretDataType, 'text');
    assert.ok(res.versionStages.versionStage.includes('ACSCurrent'));
    assert.equal(JSON.parse(res.secretData).AccessKeyId, secretKey.access_key_id);
  });

  // Verifies the generated KMS client reads the secret with an STS session
  // (SecurityToken in the signed query) issued by AssumeRoleWithOIDC.
  it('getSecretValue with an STS session', async () => {
    const session = await assumeRole({ sessionName: 'kms-rpc' });
    const res = await kmsClient(sessionCreds(session.credentials)).getSecretValue({ SecretName: SECRET });
    assert.equal(res.secretName, SECRET);
    assert.equal(JSON.parse(res.secretData).AccessKeyId, secretKey.access_key_id);
  });

  // Verifies the generated client reads Generic secrets as the API reference
  // shows them: text data as stored, binary data as base64 with
  // SecretDataType binary, and the previous version by VersionStage and by
  // VersionId. (Its 1.2.0 response model has no SecretType field; the
  // openapi-core generic client below checks that one.)
  it('getSecretValue of Generic secrets (text, binary, versions)', async () => {
    const name = `app/generic-${Date.now()}`;
    const first = await emu.admin('POST', '/admin/secrets',
                                  { name, type: 'Generic', data: '{"password":"fidelity-1"}' });
    const second = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(name)}/versions`,
                                   { data: '{"password":"fidelity-2"}', version_id: 'v-fidelity-2' });
    const client = kmsClient(staticCreds(allSecretsKey));
    const current = await client.getSecretValue({ SecretName: name });
    assert.match(current.requestId, REQUEST_ID);
    assert.equal(current.secretName, name);
    assert.equal(current.secretDataType, 'text');
    assert.equal(current.secretData, '{"password":"fidelity-2"}');
    assert.equal(current.versionId, second.version_id);
    assert.deepEqual(current.versionStages.versionStage, ['ACSCurrent']);
    const previous = await client.getSecretValue({ SecretName: name, VersionStage: 'ACSPrevious' });
    assert.equal(previous.versionId, first.version_id);
    const byId = await client.getSecretValue({ SecretName: name, VersionId: first.version_id });
    assert.equal(byId.secretData, '{"password":"fidelity-1"}');

    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    await emu.admin('POST', '/admin/secrets',
                    { name: `${name}-bin`, type: 'Generic', data_type: 'binary', data: bytes.toString('base64') });
    const binary = await client.getSecretValue({ SecretName: `${name}-bin` });
    assert.equal(binary.secretDataType, 'binary');
    assert.deepEqual(Buffer.from(binary.secretData, 'base64'), bytes);
  });
});

describe('@alicloud/openapi-core generic client', () => {
  for (const [label, algorithm] of [['ACS3-HMAC-SHA256', undefined], ['HMAC-SHA1 (v2)', 'v2']]) {
    // Verifies the generic client, signed with this algorithm, reads a
    // Generic secret's full answer: SecretType Generic, text data, version
    // and stage, and none of the managed secrets' rotation fields.
    it(`${label}: GetSecretValue of a Generic secret`, async () => {
      const name = `app/generic-openapi-${algorithm ?? 'acs3'}-${Date.now()}`;
      const created = await emu.admin('POST', '/admin/secrets',
                                      { name, type: 'Generic', data: 'openapi-generic-value-1' });
      const body = await callRpc(openApiClient(staticCreds(allSecretsKey), algorithm),
                                 'GetSecretValue', KMS_VERSION, { SecretName: name });
      assert.equal(body.SecretType, 'Generic');
      assert.equal(body.SecretDataType, 'text');
      assert.equal(body.SecretData, 'openapi-generic-value-1');
      assert.equal(body.VersionId, created.version_id);
      assert.deepEqual(body.VersionStages, { VersionStage: ['ACSCurrent'] });
      assert.equal(typeof body.CreateTime, 'string');
      for (const field of ['NextRotationDate', 'RotationInterval', 'ExtendedConfig']) {
        assert.equal(body[field], undefined, field);
      }
    });

    // Verifies the generic client's GetSecretValue, signed with this
    // algorithm, with a static key, returns the full RAMCredentials shape.
    it(`${label}: GetSecretValue with a static key`, async () => {
      const body = await callRpc(openApiClient(staticCreds(allSecretsKey), algorithm),
                                 'GetSecretValue', KMS_VERSION,
                                 { SecretName: SECRET, FetchExtendedConfig: true });
      assertRamCredentialsSecret(body, { name: SECRET, accessKeyId: secretKey.access_key_id,
                                         accessKeySecret: secretKey.access_key_secret });
      assert.equal(body.RotationInterval, '604800s');
      assert.equal(body.AutomaticRotation, 'Enabled');
      for (const field of ['CreateTime', 'LastRotationDate', 'NextRotationDate']) {
        assert.equal(typeof body[field], 'string', `${field}: ${JSON.stringify(body)}`);
      }
      const extended = JSON.parse(body.ExtendedConfig);
      assert.equal(extended.SecretSubType, 'RamUserAccessKey');
      assert.equal(extended.UserName, 'e2e-app');
    });

    // Verifies the generic client, signed with this algorithm, reads the
    // secret with an STS session (x-acs-security-token or SecurityToken).
    it(`${label}: GetSecretValue with an STS session`, async () => {
      const session = await assumeRole({ sessionName: `openapi-${algorithm ?? 'acs3'}` });
      const body = await callRpc(openApiClient(sessionCreds(session.credentials), algorithm),
                                 'GetSecretValue', KMS_VERSION, { SecretName: SECRET });
      assertRamCredentialsSecret(body, { name: SECRET, accessKeyId: secretKey.access_key_id });
    });

    // Verifies the generic client, signed with this algorithm, reaches the
    // target service.
    it(`${label}: DescribeRegions with a static key`, async () => {
      const body = await callRpc(openApiClient(staticCreds(allSecretsKey), algorithm),
                                 'DescribeRegions', ECS_VERSION, {});
      assert.ok(body.Regions.Region.some((r) => r.RegionId === REGION), JSON.stringify(body));
    });
  }

  // Verifies a VersionStage that is neither ACSCurrent nor ACSPrevious is
  // refused with InvalidParameter (400).
  it('GetSecretValue with an unknown VersionStage gets InvalidParameter', async () => {
    const err = await errorOf(callRpc(openApiClient(staticCreds(allSecretsKey)), 'GetSecretValue',
                                      KMS_VERSION, { SecretName: SECRET, VersionStage: 'ACSNoSuchStage' }));
    assertApiError(err, 'InvalidParameter', 400);
  });
});

describe('@alicloud/sts20150401 1.2.0', () => {
  // Verifies an anonymous AssumeRoleWithOIDC with a token from the emulated
  // issuer returns the real response shape: an STS. key, a token, an
  // expiry one DurationSeconds away, and the token's claims.
  it('assumeRoleWithOIDC returns a session', async () => {
    const before = Date.now();
    const body = await assumeRole({ sessionName: 'sts-sdk', durationSeconds: 1800 });
    assert.match(body.requestId, REQUEST_ID);
    const c = body.credentials;
    assert.ok(c.accessKeyId.startsWith('STS.'), c.accessKeyId);
    assert.ok(c.accessKeySecret.length > 0);
    assert.ok(c.securityToken.length > 0);
    assert.match(c.expiration, UTC_SECONDS);
    const lifetime = (Date.parse(c.expiration) - before) / 1000;
    assert.ok(lifetime > 1800 - 60 && lifetime <= 1800 + 60, `expiration ${c.expiration}: ${lifetime}s`);
    assert.equal(body.assumedRoleUser.arn, `${ROLE_ARN}/sts-sdk`);
    assert.ok(body.assumedRoleUser.assumedRoleId.endsWith(':sts-sdk'), body.assumedRoleUser.assumedRoleId);
    assert.equal(body.OIDCTokenInfo.subject, SUBJECT);
    assert.equal(body.OIDCTokenInfo.issuer, ISSUER);
    assert.equal(body.OIDCTokenInfo.clientIds, 'sts.aliyuncs.com');
  });

  // Verifies two sessions get distinct keys and tokens.
  it('each session is distinct', async () => {
    const a = await assumeRole({ sessionName: 'distinct-a' });
    const b = await assumeRole({ sessionName: 'distinct-b' });
    assert.notEqual(a.credentials.accessKeyId, b.credentials.accessKeyId);
    assert.notEqual(a.credentials.accessKeySecret, b.credentials.accessKeySecret);
    assert.notEqual(a.credentials.securityToken, b.credentials.securityToken);
  });
});

describe('@alicloud/credentials 2.4.7 OIDC role provider', () => {
  // Verifies the official OIDC provider (POST over HTTPS, query + form body,
  // token read from the file the kubelet would write) gets a session from
  // the emulator, and that session reads the secret through openapi-core
  // (ACS3) and through the RPC KMS client.
  it('oidc_role_arn credentials read the secret', async () => {
    const tokenFile = path.join(tmpDir, 'oidc-token');
    const minted = await emu.admin('POST', '/admin/oidc/tokens',
                                   { subject: SUBJECT, issuer: ISSUER, file: tokenFile });
    assert.equal(fs.readFileSync(tokenFile, 'utf8').trim(), minted.token);

    const credential = new Credential(new CredentialConfig({
      type: 'oidc_role_arn',
      roleArn: ROLE_ARN,
      oidcProviderArn: PROVIDER_ARN,
      oidcTokenFilePath: tokenFile,
      roleSessionName: 'credentials-provider',
      stsEndpoint: emu.endpoint,
    }));
    const model = await credential.getCredential();
    remember(model.accessKeySecret, model.securityToken);
    assert.ok(model.accessKeyId.startsWith('STS.'), model.accessKeyId);
    assert.ok(model.securityToken);
    assert.equal(model.type, 'oidc_role_arn');

    const body = await callRpc(openApiClient({ credential }), 'GetSecretValue', KMS_VERSION,
                               { SecretName: SECRET });
    assertRamCredentialsSecret(body, { name: SECRET, accessKeyId: secretKey.access_key_id });

    const res = await kmsClient({ credential }).getSecretValue({ SecretName: SECRET });
    assert.equal(JSON.parse(res.secretData).AccessKeyId, secretKey.access_key_id);
  });

  // Verifies the provider surfaces STS's refusal of an expired token.
  it('an expired token file is refused', async () => {
    const tokenFile = path.join(tmpDir, 'oidc-token-expired');
    await emu.admin('POST', '/admin/oidc/tokens',
                    { subject: SUBJECT, issuer: ISSUER, ttl_seconds: -600, file: tokenFile });
    const credential = new Credential(new CredentialConfig({
      type: 'oidc_role_arn', roleArn: ROLE_ARN, oidcProviderArn: PROVIDER_ARN,
      oidcTokenFilePath: tokenFile, roleSessionName: 'credentials-expired', stsEndpoint: emu.endpoint,
    }));
    const err = await errorOf(credential.getCredential());
    assert.match(err.message, /get sts token failed with OIDC: .*AuthenticationFail\.OIDCToken\.Expired/);
  });
});

describe('signatures: a wrong secret', () => {
  const wrong = () => ({ accessKeyId: allSecretsKey.access_key_id,
                         accessKeySecret: `${allSecretsKey.access_key_secret}x` });

  // Verifies a pop-core GET signed with a wrong secret gets
  // SignatureDoesNotMatch, and the server's StringToSign is exactly the one
  // the RPC scheme defines for the request pop-core sent.
  it('pop-core GET', async () => {
    const err = await errorOf(popClient(wrong(), KMS_VERSION).request('GetSecretValue', { SecretName: SECRET }));
    assertApiError(err, 'SignatureDoesNotMatch', 400);
    assert.equal(serverStringToSign(err), rpcStringToSign('GET', new URL(err.url).search));
  });

  // Verifies a pop-core POST (form body) signed with a wrong secret gets
  // SignatureDoesNotMatch with a POST StringToSign over the form parameters.
  it('pop-core POST', async () => {
    const err = await errorOf(popClient(wrong(), KMS_VERSION)
        .request('GetSecretValue', { SecretName: SECRET }, { method: 'POST' }));
    assertApiError(err, 'SignatureDoesNotMatch', 400);
    const sts = serverStringToSign(err);
    assert.ok(sts.startsWith('POST&%2F&'), sts);
    assert.ok(sts.includes(`AccessKeyId%3D${rpcEncode(rpcEncode(allSecretsKey.access_key_id))}%26`), sts);
    assert.ok(sts.includes('SecretName%3D' + rpcEncode(rpcEncode(SECRET))), sts);
  });

  // Verifies the RPC KMS client signed with a wrong secret gets
  // SignatureDoesNotMatch with the server's StringToSign.
  it('kms20160120', async () => {
    const err = await errorOf(kmsClient(wrong()).getSecretValue({ SecretName: SECRET }));
    assertApiError(err, 'SignatureDoesNotMatch', 400);
    const sts = serverStringToSign(err);
    assert.ok(/^(GET|POST)&%2F&/.test(sts), sts);
    assert.ok(sts.includes('Action%3DGetSecretValue'), sts);
  });

  // Verifies openapi-core HMAC-SHA1 (v2) signed with a wrong secret gets
  // SignatureDoesNotMatch with the server's StringToSign.
  it('openapi-core v2', async () => {
    const err = await errorOf(callRpc(openApiClient(wrong(), 'v2'), 'GetSecretValue', KMS_VERSION,
                                      { SecretName: SECRET }));
    assertApiError(err, 'SignatureDoesNotMatch', 400);
    const sts = serverStringToSign(err);
    assert.ok(sts.startsWith('POST&%2F&'), sts);
    assert.ok(sts.includes('SignatureMethod%3DHMAC-SHA1'), sts);
  });

  // Verifies openapi-core ACS3-HMAC-SHA256 signed with a wrong secret gets
  // SignatureDoesNotMatch (400).
  it('openapi-core ACS3', async () => {
    const err = await errorOf(callRpc(openApiClient(wrong()), 'GetSecretValue', KMS_VERSION,
                                      { SecretName: SECRET }));
    assertApiError(err, 'SignatureDoesNotMatch', 400);
  });

  // Verifies an STS session key signed with a wrong secret is refused too.
  it('openapi-core ACS3 with an STS session', async () => {
    const { credentials: c } = await assumeRole({ sessionName: 'wrong-secret' });
    const err = await errorOf(callRpc(openApiClient({ ...sessionCreds(c), accessKeySecret: `${c.accessKeySecret}x` }),
                                      'GetSecretValue', KMS_VERSION, { SecretName: SECRET }));
    assertApiError(err, 'SignatureDoesNotMatch', 400);
  });
});

describe('access key lifecycle on the target service', () => {
  // Verifies a key works, then after admin revoke gets
  // InvalidAccessKeyId.NotFound with HTTP 404, from pop-core and openapi-core.
  it('a revoked key gets InvalidAccessKeyId.NotFound (404)', async () => {
    const key = await newAccessKey([]);
    await popClient(staticCreds(key), ECS_VERSION).request('DescribeRegions', {});
    await emu.admin('POST', `/admin/access-keys/${encodeURIComponent(key.access_key_id)}/revoke`);
    assertApiError(await errorOf(popClient(staticCreds(key), ECS_VERSION).request('DescribeRegions', {})),
                   'InvalidAccessKeyId.NotFound', 404);
    assertApiError(await errorOf(callRpc(openApiClient(staticCreds(key)), 'DescribeRegions', ECS_VERSION, {})),
                   'InvalidAccessKeyId.NotFound', 404);
  });

  // Verifies a disabled key gets InvalidAccessKeyId.Inactive (400) and works
  // again once enabled.
  it('a disabled key gets InvalidAccessKeyId.Inactive (400) until enabled', async () => {
    const key = await newAccessKey([]);
    const keyPath = `/admin/access-keys/${encodeURIComponent(key.access_key_id)}`;
    await emu.admin('POST', `${keyPath}/disable`);
    assertApiError(await errorOf(popClient(staticCreds(key), ECS_VERSION).request('DescribeRegions', {})),
                   'InvalidAccessKeyId.Inactive', 400);
    assertApiError(await errorOf(callRpc(openApiClient(staticCreds(key)), 'DescribeRegions', ECS_VERSION, {})),
                   'InvalidAccessKeyId.Inactive', 400);
    await emu.admin('POST', `${keyPath}/enable`);
    const body = await popClient(staticCreds(key), ECS_VERSION).request('DescribeRegions', {});
    assert.ok(body.Regions.Region.length > 0);
  });

  // Verifies a key that never existed gets InvalidAccessKeyId.NotFound.
  it('an unknown key gets InvalidAccessKeyId.NotFound', async () => {
    const err = await errorOf(popClient({ accessKeyId: 'LTAI5tNOSUCHKEY0000000000', accessKeySecret: 'x' },
                                        ECS_VERSION).request('DescribeRegions', {}));
    assertApiError(err, 'InvalidAccessKeyId.NotFound', 404);
  });
});

describe('KMS authorization', () => {
  // Verifies a secret that does not exist gets Forbidden.ResourceNotFound
  // (404) from all three KMS clients.
  it('an unknown secret gets Forbidden.ResourceNotFound (404)', async () => {
    const name = 'acs/ram/user/no-such-secret';
    const creds = staticCreds(allSecretsKey);
    assertApiError(await errorOf(callRpc(openApiClient(creds), 'GetSecretValue', KMS_VERSION, { SecretName: name })),
                   'Forbidden.ResourceNotFound', 404);
    assertApiError(await errorOf(popClient(creds, KMS_VERSION).request('GetSecretValue', { SecretName: name })),
                   'Forbidden.ResourceNotFound', 404);
    assertApiError(await errorOf(kmsClient(creds).getSecretValue({ SecretName: name })),
                   'Forbidden.ResourceNotFound', 404);
  });

  // Verifies a session of a role that may not read the secret gets
  // Forbidden.NoPermission (403).
  it('a role without permission gets Forbidden.NoPermission (403)', async () => {
    const { credentials: c } = await assumeRole({ roleArn: NO_PERMISSION_ROLE_ARN, sessionName: 'no-permission' });
    assertApiError(await errorOf(callRpc(openApiClient(sessionCreds(c)), 'GetSecretValue', KMS_VERSION,
                                         { SecretName: SECRET })),
                   'Forbidden.NoPermission', 403);
    assertApiError(await errorOf(callRpc(openApiClient(sessionCreds(c), 'v2'), 'GetSecretValue', KMS_VERSION,
                                         { SecretName: SECRET })),
                   'Forbidden.NoPermission', 403);
  });

  // Verifies a role's session reads only the secrets the role lists.
  it('a role reads only its own secrets', async () => {
    const { credentials: c } = await assumeRole({ sessionName: 'own-secrets-only' });
    assertApiError(await errorOf(callRpc(openApiClient(sessionCreds(c)), 'GetSecretValue', KMS_VERSION,
                                         { SecretName: OTHER_SECRET })),
                   'Forbidden.NoPermission', 403);
  });

  // Verifies a static key scoped to one secret may not read another.
  it('a static key reads only its own secrets', async () => {
    const key = await newAccessKey([SECRET]);
    await callRpc(openApiClient(staticCreds(key)), 'GetSecretValue', KMS_VERSION, { SecretName: SECRET });
    assertApiError(await errorOf(callRpc(openApiClient(staticCreds(key)), 'GetSecretValue', KMS_VERSION,
                                         { SecretName: OTHER_SECRET })),
                   'Forbidden.NoPermission', 403);
  });
});

describe('STS sessions: the security token', () => {
  // Verifies one session's key with another session's token is refused with
  // InvalidSecurityToken.MismatchWithAccessKey, in both signature schemes
  // and through the RPC KMS client.
  it('a token with another session\'s key is rejected', async () => {
    const a = (await assumeRole({ sessionName: 'mismatch-a' })).credentials;
    const b = (await assumeRole({ sessionName: 'mismatch-b' })).credentials;
    const mixed = { accessKeyId: a.accessKeyId, accessKeySecret: a.accessKeySecret, securityToken: b.securityToken };
    for (const algorithm of [undefined, 'v2']) {
      assertApiError(await errorOf(callRpc(openApiClient(mixed, algorithm), 'GetSecretValue', KMS_VERSION,
                                           { SecretName: SECRET })),
                     'InvalidSecurityToken.MismatchWithAccessKey', 400);
    }
    assertApiError(await errorOf(kmsClient(mixed).getSecretValue({ SecretName: SECRET })),
                   'InvalidSecurityToken.MismatchWithAccessKey', 400);
  });

  // Verifies a session key sent without its token gets MissingSecurityToken.
  it('a session key without its token gets MissingSecurityToken', async () => {
    const { credentials: c } = await assumeRole({ sessionName: 'missing-token' });
    const keyOnly = { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret };
    for (const algorithm of [undefined, 'v2']) {
      assertApiError(await errorOf(callRpc(openApiClient(keyOnly, algorithm), 'GetSecretValue', KMS_VERSION,
                                           { SecretName: SECRET })),
                     'MissingSecurityToken', 400);
    }
  });
});

describe('STS AssumeRoleWithOIDC refusals', () => {
  const refusals = [
    // [what, token overrides or null for the default token, request overrides, code]
    ['a token minted for another audience', { audience: 'some-other-audience' }, {},
     'AuthenticationFail.OIDCToken.AudienceNotMatch'],
    ['an expired token', { ttl_seconds: -600 }, {}, 'AuthenticationFail.OIDCToken.Expired'],
    ['a token from another issuer', { issuer: 'https://oidc.example.com/not-registered' }, {},
     'AuthenticationFail.OIDCToken.IssuerNotMatch'],
    ['a token signed by a rogue key', { signing_key: 'rogue' }, {}, 'AuthenticationFail.OIDCToken.Invalid'],
    ['a subject the role does not trust', { subject: 'system:serviceaccount:default:intruder' }, {},
     'AuthenticationFail.NoPermission'],
    ['an unknown role', {}, { roleArn: `acs:ram::${ACCOUNT}:role/no-such-role` }, 'EntityNotExist.Role'],
    ['an unknown OIDC provider', {}, { providerArn: `acs:ram::${ACCOUNT}:oidc-provider/no-such-provider` },
     'AuthenticationFail.NoPermission'],
    ['a DurationSeconds below 900', {}, { durationSeconds: 600 }, 'InvalidParameter.DurationSeconds'],
    ['a DurationSeconds above the role\'s maximum', {}, { durationSeconds: 7200 },
     'InvalidParameter.DurationSeconds'],
  ];
  for (const [what, tokenOverrides, requestOverrides, code] of refusals) {
    // Verifies STS refuses this request through the official STS SDK with
    // the real code, as a 4xx.
    it(`${what}: ${code}`, async () => {
      const token = await mintToken(tokenOverrides);
      const err = await errorOf(assumeRole({ token, sessionName: 'refused', ...requestOverrides }));
      assert.equal(apiCode(err), code, `${err.stack}\n${JSON.stringify(err.data)}`);
      const status = httpStatus(err);
      assert.ok(status >= 400 && status < 500, `status ${status}`);
      assert.match(err.data.RequestId, REQUEST_ID);
      assert.equal(typeof err.data.Message, 'string');
    });
  }

  // Verifies a garbage string as the token is AuthenticationFail.OIDCToken.Invalid.
  it('a malformed token: AuthenticationFail.OIDCToken.Invalid', async () => {
    const err = await errorOf(assumeRole({ token: 'not.a.jwt', sessionName: 'malformed' }));
    assert.equal(apiCode(err), 'AuthenticationFail.OIDCToken.Invalid', JSON.stringify(err.data));
  });
});

describe('rotation', () => {
  // Verifies an admin rotation makes GetSecretValue return the new key as
  // ACSCurrent and the old one as ACSPrevious; the previous key still works,
  // and a second rotation deletes the key before it (two-key limit).
  it('admin rotate: ACSCurrent and ACSPrevious', async () => {
    const name = 'acs/ram/user/e2e-rotate';
    const created = await emu.admin('POST', '/admin/secrets', { name, user_name: 'e2e-rotate' });
    const client = openApiClient(staticCreds(allSecretsKey));
    const get = (stage) => callRpc(client, 'GetSecretValue', KMS_VERSION,
                                   stage ? { SecretName: name, VersionStage: stage } : { SecretName: name });

    const first = await get();
    assertRamCredentialsSecret(first, { name, accessKeyId: created.access_key_id,
                                        accessKeySecret: created.access_key_secret });
    assert.equal(first.VersionId, created.version_id);

    const rotated = await emu.admin('POST', `${secretPath(name)}/rotate`, { revoke_previous: false });
    assert.equal(rotated.previous_access_key_id, created.access_key_id);
    assert.notEqual(rotated.access_key_id, created.access_key_id);
    assert.notEqual(rotated.version_id, created.version_id);

    const current = await get();
    assertRamCredentialsSecret(current, { name, accessKeyId: rotated.access_key_id,
                                          accessKeySecret: rotated.access_key_secret });
    assert.equal(current.VersionId, rotated.version_id);
    assert.ok(!current.VersionStages.VersionStage.includes('ACSPrevious'));
    const explicitCurrent = await get('ACSCurrent');
    assert.equal(explicitCurrent.VersionId, rotated.version_id);

    const previous = await get('ACSPrevious');
    assertRamCredentialsSecret(previous, { name, accessKeyId: created.access_key_id, stage: 'ACSPrevious' });
    assert.equal(previous.VersionId, created.version_id);
    assert.ok(!previous.VersionStages.VersionStage.includes('ACSCurrent'));

    // Both keys are live RAM-user keys on the target service.
    for (const key of [created, rotated]) {
      await callRpc(openApiClient(staticCreds(key)), 'DescribeRegions', ECS_VERSION, {});
    }

    const listed = await emu.admin('GET', secretPath(name));
    const stagesOf = (id) => listed.versions.find((v) => v.version_id === id)?.stages;
    assert.deepEqual(stagesOf(rotated.version_id), ['ACSCurrent']);
    assert.deepEqual(stagesOf(created.version_id), ['ACSPrevious']);

    // A second rotation: the first key is older than ACSPrevious, so deleted.
    const again = await emu.admin('POST', `${secretPath(name)}/rotate`, { revoke_previous: false });
    assert.equal(again.previous_access_key_id, rotated.access_key_id);
    assertApiError(await errorOf(callRpc(openApiClient(staticCreds(created)), 'DescribeRegions', ECS_VERSION, {})),
                   'InvalidAccessKeyId.NotFound', 404);
    await callRpc(openApiClient(staticCreds(rotated)), 'DescribeRegions', ECS_VERSION, {});
    assert.equal(JSON.parse((await get('ACSPrevious')).SecretData).AccessKeyId, rotated.access_key_id);
  });

  // Verifies revoke_previous: the key that was current before the rotation
  // stops working at once (InvalidAccessKeyId.NotFound).
  it('admin rotate with revoke_previous', async () => {
    const name = 'acs/ram/user/e2e-rotate-revoke';
    const created = await emu.admin('POST', '/admin/secrets', { name, user_name: 'e2e-rotate-revoke' });
    const rotated = await emu.admin('POST', `${secretPath(name)}/rotate`, { revoke_previous: true });
    assert.equal(rotated.previous_access_key_id, created.access_key_id);
    assertApiError(await errorOf(callRpc(openApiClient(staticCreds(created)), 'DescribeRegions', ECS_VERSION, {})),
                   'InvalidAccessKeyId.NotFound', 404);
    await callRpc(openApiClient(staticCreds(rotated)), 'DescribeRegions', ECS_VERSION, {});
    const current = await callRpc(openApiClient(staticCreds(allSecretsKey)), 'GetSecretValue', KMS_VERSION,
                                  { SecretName: name });
    assert.equal(JSON.parse(current.SecretData).AccessKeyId, rotated.access_key_id);
  });

  // Verifies the KMS RotateSecret API (signed ACS3 by openapi-core) rotates
  // to the VersionId the caller chose, answers the real shape, and is
  // idempotent on that VersionId. (API doc, kms 2016-01-20 RotateSecret:
  // VersionId is "the version number of the secret after the secret is
  // rotated ... If a version number already exists, Secrets Manager ignores
  // the request for rotation".)
  it('KMS RotateSecret API', async () => {
    const name = 'acs/ram/user/e2e-rotate-api';
    const created = await emu.admin('POST', '/admin/secrets', { name, user_name: 'e2e-rotate-api' });
    const client = openApiClient(staticCreds(allSecretsKey));
    const versionId = 'e2e-rotation-v2';
    const body = await callRpc(client, 'RotateSecret', KMS_VERSION, { SecretName: name, VersionId: versionId });
    assert.match(body.RequestId, REQUEST_ID);
    assert.equal(body.SecretName, name);
    assert.equal(body.VersionId, versionId);
    assert.ok(String(body.Arn).startsWith('acs:kms:') && String(body.Arn).includes(name), body.Arn);

    const current = await callRpc(client, 'GetSecretValue', KMS_VERSION, { SecretName: name });
    assert.equal(current.VersionId, versionId);
    assert.notEqual(JSON.parse(current.SecretData).AccessKeyId, created.access_key_id);
    const previous = await callRpc(client, 'GetSecretValue', KMS_VERSION,
                                   { SecretName: name, VersionStage: 'ACSPrevious' });
    assert.equal(JSON.parse(previous.SecretData).AccessKeyId, created.access_key_id);

    // A retry with the same VersionId does not rotate again.
    const retried = await callRpc(client, 'RotateSecret', KMS_VERSION, { SecretName: name, VersionId: versionId });
    assert.equal(retried.VersionId, versionId);
    const afterRetry = await callRpc(client, 'GetSecretValue', KMS_VERSION, { SecretName: name });
    assert.equal(afterRetry.VersionId, versionId);
    assert.equal(JSON.parse(afterRetry.SecretData).AccessKeyId, JSON.parse(current.SecretData).AccessKeyId);
  });
});

describe('fault injection and counters', () => {
  const getSecret = () => callRpc(openApiClient(staticCreds(allSecretsKey)), 'GetSecretValue', KMS_VERSION,
                                  { SecretName: SECRET });

  // Verifies each injected fault reaches the SDK as the real failure would
  // (throttling → ThrottlingError Rejected.Throttling; http_5xx →
  // ServerError 503; malformed_json and truncated_body → a JSON parse
  // failure; reset → a socket error), that count: 1 applies once, and that
  // the counters count exactly the calls made, by outcome.
  it('faults are visible to the SDK and counted exactly', async () => {
    await emu.admin('DELETE', '/admin/faults');
    await emu.admin('DELETE', '/admin/counters');
    try {
      await emu.admin('POST', '/admin/faults', { action: 'GetSecretValue', kind: 'throttling', count: 1 });
      const throttled = await errorOf(getSecret());
      assertApiError(throttled, 'Rejected.Throttling', 400);
      assert.equal(throttled.name, 'ThrottlingError');
      await getSecret();  // count: 1 is spent

      const fault = await emu.admin('POST', '/admin/faults',
                                    { action: 'GetSecretValue', kind: 'http_5xx', count: 1 });
      assert.ok(fault.id !== undefined, JSON.stringify(fault));
      const unavailable = await errorOf(getSecret());
      assertApiError(unavailable, 'ServiceUnavailableTemporary', 503);
      assert.equal(unavailable.name, 'ServerError');

      await emu.admin('POST', '/admin/faults',
                      { action: 'GetSecretValue', kind: 'http_5xx', status: 502, count: 1 });
      assert.equal(httpStatus(await errorOf(getSecret())), 502);

      await emu.admin('POST', '/admin/faults', { action: 'GetSecretValue', kind: 'internal_failure', count: 1 });
      assertApiError(await errorOf(getSecret()), 'InternalFailure', 500);

      await emu.admin('POST', '/admin/faults', { action: 'GetSecretValue', kind: 'malformed_json', count: 1 });
      const malformed = await errorOf(getSecret());
      assert.ok(malformed instanceof SyntaxError || /JSON/i.test(malformed.message), malformed.stack);

      await emu.admin('POST', '/admin/faults', { action: 'GetSecretValue', kind: 'truncated_body', count: 1 });
      const truncated = await errorOf(getSecret());
      assert.ok(truncated instanceof SyntaxError || /JSON|aborted|socket|premature/i.test(truncated.message),
                truncated.stack);

      await emu.admin('POST', '/admin/faults', { action: 'GetSecretValue', kind: 'reset', count: 1 });
      const reset = await errorOf(getSecret());
      assert.match(`${reset.code} ${reset.message}`, /ECONNRESET|socket hang up|EPIPE/, reset.stack);

      await getSecret();  // every fault was count: 1

      const counters = await emu.admin('GET', '/admin/counters');
      assert.deepEqual(counters.actions, {
        GetSecretValue: {
          requests: 9,
          successes: 2,
          failures: {
            'Rejected.Throttling': 1,
            ServiceUnavailableTemporary: 2,
            InternalFailure: 1,
            MalformedBody: 1,
            TruncatedBody: 1,
            ConnectionReset: 1,
          },
        },
      });
    } finally {
      await emu.admin('DELETE', '/admin/faults');
    }
  });

  // Verifies throttling on STS reaches the STS SDK as Throttling.User, an
  // action-less fault ("*") hits every API action, DELETE /admin/faults
  // clears them, and the counters count per action.
  it('STS throttling, wildcard faults, clearing', async () => {
    await emu.admin('DELETE', '/admin/counters');
    try {
      await emu.admin('POST', '/admin/faults', { action: 'AssumeRoleWithOIDC', kind: 'throttling', count: 1 });
      const err = await errorOf(assumeRole({ sessionName: 'throttled' }));
      assert.equal(apiCode(err), 'Throttling.User', JSON.stringify(err.data));
      assert.equal(httpStatus(err), 400);
      assert.equal(err.name, 'ThrottlingError');

      await emu.admin('POST', '/admin/faults', { action: '*', kind: 'http_5xx' });
      assert.equal(httpStatus(await errorOf(getSecret())), 503);
      assert.equal(httpStatus(await errorOf(callRpc(openApiClient(staticCreds(allSecretsKey)),
                                                    'DescribeRegions', ECS_VERSION, {}))), 503);
      await emu.admin('DELETE', '/admin/faults');
      await getSecret();

      const counters = await emu.admin('GET', '/admin/counters');
      assert.deepEqual(counters.actions, {
        AssumeRoleWithOIDC: { requests: 1, successes: 0, failures: { 'Throttling.User': 1 } },
        GetSecretValue: { requests: 2, successes: 1, failures: { ServiceUnavailableTemporary: 1 } },
        DescribeRegions: { requests: 1, successes: 0, failures: { ServiceUnavailableTemporary: 1 } },
      });
    } finally {
      await emu.admin('DELETE', '/admin/faults');
    }
  });

  // Verifies a latency fault delays the answer by at least latency_ms and
  // the call then succeeds.
  it('latency', async () => {
    try {
      await emu.admin('POST', '/admin/faults',
                      { action: 'GetSecretValue', kind: 'latency', latency_ms: 400, count: 1 });
      const start = process.hrtime.bigint();
      await getSecret();
      const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
      assert.ok(elapsedMs >= 400, `answered after ${elapsedMs} ms`);
    } finally {
      await emu.admin('DELETE', '/admin/faults');
    }
  });
});

describe('emulator process', () => {
  // Verifies --seed: a second emulator started from a seed file has the
  // seeded provider, role, secret and static key, and the official SDKs use
  // them.
  it('a seeded world', async () => {
    const seedKey = { access_key_id: 'LTAI5tE2ESEEDSTATICKEY01', access_key_secret: 'e2e-seed-secret-0123456789abcdef' };
    const seeded = await startEmulator({
      seed: {
        account_id: ACCOUNT,
        region: REGION,
        oidc_providers: [{ arn: PROVIDER_ARN, issuer: ISSUER, audiences: ['sts.aliyuncs.com'] }],
        roles: [{ arn: ROLE_ARN, oidc_provider_arn: PROVIDER_ARN, subjects: [SUBJECT], secrets: [SECRET],
                  max_session_duration_seconds: 3600 }],
        access_keys: [{ ...seedKey, secrets: ['*'] }],
        secrets: [{ name: SECRET, rotation_interval_seconds: 604800, user_name: 'e2e-app' }],
      },
    });
    try {
      const client = new OpenApiClient(new $OpenApiUtil.Config({
        accessKeyId: seedKey.access_key_id, accessKeySecret: seedKey.access_key_secret,
        endpoint: seeded.endpoint, protocol: 'https',
      }));
      const body = await callRpc(client, 'GetSecretValue', KMS_VERSION, { SecretName: SECRET });
      const listed = await seeded.admin('GET', secretPath(SECRET));
      assert.equal(JSON.parse(body.SecretData).AccessKeyId, listed.versions[0].access_key_id);

      const token = (await seeded.admin('POST', '/admin/oidc/tokens', { subject: SUBJECT, issuer: ISSUER })).token;
      const sts = new StsClient(new $OpenApiUtil.Config({ endpoint: seeded.endpoint, protocol: 'https' }));
      const session = await sts.assumeRoleWithOIDC(new AssumeRoleWithOIDCRequest({
        roleArn: ROLE_ARN, OIDCProviderArn: PROVIDER_ARN, OIDCToken: token, roleSessionName: 'seeded',
      }));
      assert.ok(session.body.credentials.accessKeyId.startsWith('STS.'));
    } finally {
      await seeded.stop();
    }
    assert.ok(!fs.existsSync(seeded.stateDir));
  });

  // Verifies SIGTERM stops the emulator cleanly (exit 0) and promptly (the
  // harness allows 5 s before SIGKILL), both when no client is connected and
  // while an SDK's keep-alive connection sits idle, as it does after any
  // call from the official SDKs.
  it('a clean, prompt SIGTERM', async () => {
    for (const withIdleConnection of [false, true]) {
      const other = await startEmulator();
      const started = Date.now();
      let exit;
      try {
        if (withIdleConnection) {
          const agent = new https.Agent({ keepAlive: true, ca: other.ca });
          await new Promise((resolve, reject) => {
            https.get({ host: '127.0.0.1', port: other.port, path: '/admin/health', agent }, (res) => {
              res.resume();
              res.on('end', resolve);
            }).on('error', reject);
          });
          // The agent keeps the connection open until the server closes it.
          other.agent = agent;
        }
      } finally {
        exit = await other.stop();
        other.agent?.destroy();
      }
      const what = withIdleConnection ? 'with an idle keep-alive connection' : 'with no connection';
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null },
                       `exit on SIGTERM ${what} after ${Date.now() - started} ms; stderr:\n${other.stderrTail(2000)}`);
    }
  });
});

describe('logging', () => {
  // Verifies the emulator, at debug level, logged none of the secrets it
  // handed out during this file (keys, session secrets, security tokens,
  // OIDC tokens). Runs last, after every other test.
  it('no secret in the emulator\'s log', async () => {
    assert.ok(handedOut.size > 20, `only ${handedOut.size} secrets were seen`);
    const log = fs.readFileSync(emu.stderrFile, 'utf8');
    assert.ok(log.includes('"level":"debug"') || log.length > 1000, 'the log is (nearly) empty');
    const leaked = [...handedOut].filter((secret) => log.includes(secret));
    assert.deepEqual(leaked.map((secret) => `${secret.slice(0, 4)}…(${secret.length} chars)`), [],
                     `secrets found in ${emu.stderrFile}`);
  });
});
