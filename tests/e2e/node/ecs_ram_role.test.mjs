// identity.type ecs_ram_role end to end (issue 8): the real credsync binary
// takes its STS session from the emulator's ECS instance metadata service
// (tests/emulator/metadata_service.h, plain HTTP on its own loopback
// listener) and reads KMS with it; and the official @alicloud/credentials
// ECS RAM role provider fetches from the same service, which shows the
// emulator answers as ECS does.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_ecs_ram_role).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import { callRpc, KMS_VERSION, makeOpenApiClient } from './sdk_clients.mjs';
import { ACCOUNT, startSidecar, waitForFile, writeConfig } from './sidecar.mjs';

const require = createRequire(import.meta.url);

let emu;

before(async () => {
  emu = await startEmulator();
});

after(async () => {
  await emu?.stop();
});

// A role that may read `secrets`, the secrets, and the emulated instance
// with that role attached (`metadata`: mode, session_duration_seconds, ...).
async function setUpInstance(name, metadata = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `credsync-ecs-${name}-`));
  const roleName = `ecs-${name}`;
  const roleArn = `acs:ram::${ACCOUNT}:role/${roleName}`;
  const secret = `acs/ram/user/ecs-${name}-app`;
  await emu.admin('POST', '/admin/roles', { arn: roleArn, secrets: [secret] });
  const created = await emu.admin('POST', '/admin/secrets', { name: secret });
  const md = await emu.admin('POST', '/admin/metadata', {
    role_name: roleName, role_arn: roleArn, mode: 'both', session_duration_seconds: 21600,
    ...metadata,
  });
  await emu.admin('DELETE', '/admin/counters');
  return { dir, roleName, roleArn, secret, created, metadataEndpoint: `http://127.0.0.1:${md.port}` };
}

function sidecarConfig(instance, identity = {}, refresh = {}) {
  return writeConfig(instance.dir, {
    identity: { type: 'ecs_ram_role', metadata_endpoint: instance.metadataEndpoint, ...identity },
    kms: { endpoints: [emu.endpoint] },
    tls: { ca_file: emu.caFile },
    profiles: [{ name: 'default', secret_name: instance.secret }],
    output: { directory: path.join(instance.dir, 'out') },
    refresh: { jitter: 0, rotation_jitter: '0s', ...refresh },
    log: { level: 'debug' },
  });
}

async function counter(action) {
  const counters = await emu.admin('GET', '/admin/counters');
  const found = counters.actions?.[action] ?? {};
  return { requests: 0, successes: 0, ...found, failures: found.failures ?? {} };
}

function credentialsFile(instance) {
  return path.join(instance.dir, 'out', 'credentials.ini');
}

describe('credsync with identity ecs_ram_role', () => {
  // Verifies the hardened mode: the token PUT comes first, the credentials
  // GET carries the token (the instance refuses GETs without one), and the
  // session reads the secret from KMS into credentials.ini.
  it('writes the file through the hardened mode', async () => {
    const instance = await setUpInstance('hardened', { mode: 'hardened_only' });
    const sc = await startSidecar({ configFile: sidecarConfig(instance, { role_name: instance.roleName }),
                                    name: 'ecs-hardened' });
    try {
      const content = await waitForFile(credentialsFile(instance));
      assert.ok(content.includes(instance.created.access_key_id), content);
      const token = await counter('MetadataToken');
      assert.ok(token.successes >= 1, JSON.stringify(token));
      const creds = await counter('MetadataCredentials');
      assert.ok(creds.successes >= 1, JSON.stringify(creds));
      assert.deepEqual(creds.failures, {}, 'a GET went without the token');
      assert.equal((await counter('MetadataRoleName')).requests, 0, 'the configured role was discovered anyway');
      const session = sc.logs().find((l) => l.msg === 'STS session obtained');
      assert.equal(session.identity, 'ecs_ram_role');
      assert.ok(!sc.stderr().includes(instance.created.access_key_secret));
    } finally {
      assert.equal((await sc.stop()).code, 0, sc.stderr());
    }
  });

  // Verifies the role name is discovered from the metadata when none is
  // configured (ALIBABA_CLOUD_ECS_METADATA unset too).
  it('discovers the role name', async () => {
    const instance = await setUpInstance('discover');
    const sc = await startSidecar({ configFile: sidecarConfig(instance), name: 'ecs-discover' });
    try {
      await waitForFile(credentialsFile(instance));
      assert.ok((await counter('MetadataRoleName')).successes >= 1);
    } finally {
      assert.equal((await sc.stop()).code, 0, sc.stderr());
    }
  });

  // Verifies ALIBABA_CLOUD_ECS_METADATA names the role, as in the SDKs.
  it('takes the role name from ALIBABA_CLOUD_ECS_METADATA', async () => {
    const instance = await setUpInstance('envrole');
    const sc = await startSidecar({ configFile: sidecarConfig(instance), name: 'ecs-envrole',
                                    env: { ALIBABA_CLOUD_ECS_METADATA: instance.roleName } });
    try {
      await waitForFile(credentialsFile(instance));
      assert.equal((await counter('MetadataRoleName')).requests, 0);
    } finally {
      assert.equal((await sc.stop()).code, 0, sc.stderr());
    }
  });

  // Verifies the fallback to the normal mode when the token PUT is refused
  // and the fallback is allowed (the default): a warning, then the file.
  it('falls back to the normal mode when allowed', async () => {
    const instance = await setUpInstance('fallback', { mode: 'normal_only' });
    const sc = await startSidecar({ configFile: sidecarConfig(instance), name: 'ecs-fallback' });
    try {
      await waitForFile(credentialsFile(instance));
      assert.equal((await counter('MetadataToken')).failures.TokenRefused >= 1, true);
      assert.ok(sc.logs().some((l) => l.level === 'warn' && /normal mode/.test(l.msg)), sc.stderr());
    } finally {
      assert.equal((await sc.stop()).code, 0, sc.stderr());
    }
  });

  // Verifies no fallback when it is not allowed (by the file, and by
  // ALIBABA_CLOUD_IMDSV1_DISABLED): a clear error, no credentials GET, no file.
  for (const [label, identity, env] of [
    ['identity.imdsv1_fallback false', { imdsv1_fallback: false }, {}],
    ['ALIBABA_CLOUD_IMDSV1_DISABLED=true', {}, { ALIBABA_CLOUD_IMDSV1_DISABLED: 'true' }],
  ]) {
    it(`refuses the normal mode with ${label}`, async () => {
      const instance = await setUpInstance(`nofallback${Object.keys(env).length}`, { mode: 'normal_only' });
      const sc = await startSidecar({ configFile: sidecarConfig(instance, identity), env,
                                      name: 'ecs-nofallback' });
      try {
        await sc.waitForLog((l) => JSON.stringify(l).includes('the normal mode without a token is not allowed'),
                            'the hardened-mode error');
        await delay(1000);
        assert.equal(fs.existsSync(credentialsFile(instance)), false);
        assert.equal((await counter('MetadataCredentials')).requests, 0);
        assert.ok((await counter('MetadataToken')).failures.TokenRefused >= 1);
      } finally {
        assert.equal((await sc.stop()).code, 0, sc.stderr());
      }
    });
  }

  // Verifies the session is refreshed before its Expiration: a 75 s session
  // is replaced at 2/3 of its lifetime (at most 10% earlier), and the new
  // one keeps KMS reads going.
  it('refreshes the session before it expires', async () => {
    const instance = await setUpInstance('refresh', { session_duration_seconds: 75 });
    const sc = await startSidecar({ configFile: sidecarConfig(instance, {}, { interval: '2s' }),
                                    name: 'ecs-refresh' });
    try {
      await waitForFile(credentialsFile(instance));
      const started = Date.now();
      const first = sc.logs().find((l) => l.msg === 'STS session obtained');
      const second = await sc.waitForLog(
        (l) => l.msg === 'STS session obtained' && l.access_key_id !== first.access_key_id,
        'a second session', 70000);
      const elapsed = (Date.now() - started) / 1000;
      assert.ok(elapsed < 70, `refreshed after ${elapsed} s`);
      assert.ok(Date.parse(second.expiration) > Date.parse(first.expiration));
      assert.ok(Date.parse(first.refresh_at) < Date.parse(first.expiration) - 20000, JSON.stringify(first));
      const kms = await counter('GetSecretValue');
      const before = kms.successes;
      await delay(3000);
      assert.ok((await counter('GetSecretValue')).successes > before, 'KMS reads stopped after the refresh');
    } finally {
      assert.equal((await sc.stop()).code, 0, sc.stderr());
    }
  });
});

describe('the official SDK against the emulated metadata service', () => {
  // The Node SDK's ECS RAM role provider hard-codes 100.100.100.200
  // (dist/src/providers/ecs_ram_role.js); its `doRequest` member (there "for
  // mock") is the one override: requests are sent unchanged except for the
  // host, which points at the emulator's metadata listener.
  function sdkProvider(instance, options = {}) {
    const ECSRAMRoleCredentialsProvider = require('@alicloud/credentials/dist/src/providers/ecs_ram_role').default;
    const { doRequest } = require('@alicloud/credentials/dist/src/providers/http');
    let builder = ECSRAMRoleCredentialsProvider.builder();
    if (options.roleName) builder = builder.withRoleName(options.roleName);
    if (options.disableIMDSv1) builder = builder.withDisableIMDSv1(true);
    const provider = builder.build();
    const host = instance.metadataEndpoint.replace(/^http:\/\//, '');
    const seen = [];
    provider.doRequest = (request) => {
      assert.equal(request.host, '100.100.100.200');
      seen.push({ method: request.method, path: request.path, headers: { ...request.headers } });
      request.host = host;
      return doRequest(request);
    };
    return { provider, seen };
  }

  // Verifies the SDK, in the hardened mode with role discovery, gets a
  // session from the emulator, and KMS accepts it for the role's secret.
  it('fetches a session KMS accepts', async () => {
    const instance = await setUpInstance('sdk', { mode: 'hardened_only' });
    const { provider, seen } = sdkProvider(instance);
    const creds = await provider.getCredentials();
    assert.match(creds.accessKeyId, /^STS\./);
    assert.equal(creds.providerName, 'ecs_ram_role');
    assert.deepEqual(seen.map((r) => `${r.method} ${r.path}`), [
      'PUT /latest/api/token',
      'GET /latest/meta-data/ram/security-credentials/',
      'PUT /latest/api/token',
      `GET /latest/meta-data/ram/security-credentials/${instance.roleName}`,
    ]);
    assert.equal(seen[0].headers['x-aliyun-ecs-metadata-token-ttl-seconds'], '21600');
    assert.ok(seen[3].headers['x-aliyun-ecs-metadata-token']);
    const client = makeOpenApiClient(emu.endpoint, creds);
    const answer = await callRpc(client, 'GetSecretValue', KMS_VERSION, { SecretName: instance.secret });
    assert.equal(JSON.parse(answer.SecretData).AccessKeyId, instance.created.access_key_id);
  });

  // Verifies the SDK falls back to the normal mode against an instance that
  // refuses tokens, and fails with disableIMDSv1: the emulator's modes
  // behave as the SDK expects.
  it('falls back, or not, as the SDK decides', async () => {
    const instance = await setUpInstance('sdkv1', { mode: 'normal_only' });
    const { provider, seen } = sdkProvider(instance, { roleName: instance.roleName });
    const creds = await provider.getCredentials();
    assert.match(creds.accessKeyId, /^STS\./);
    assert.equal(seen.at(-1).headers['x-aliyun-ecs-metadata-token'], undefined);
    const strict = sdkProvider(instance, { roleName: instance.roleName, disableIMDSv1: true });
    await assert.rejects(strict.provider.getCredentials(), /403/);
  });
});
