// The sidecar end to end: the real credsync binary, given only the RRSA
// environment, a config and the test CA, against the emulator over TLS; and
// the official @alicloud/credentials reading what it writes, as an app does.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_sidecar), which sets
// NODE_EXTRA_CA_CERTS to the emulator's CA and CREDSYNC_BIN to the binary.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import { callRpc, ECS_VERSION, makeOpenApiClient } from './sdk_clients.mjs';
import {
  parseLogLines, runCredsync, setUpRrsaWorld, startSidecar, waitForFile, writeConfig,
} from './sidecar.mjs';

const require = createRequire(import.meta.url);
const Credential = require('@alicloud/credentials').default;

let emu;

before(async () => {
  emu = await startEmulator();
});

after(async () => {
  await emu?.stop();
});

// The sidecar's config for `world`: KMS and STS on the emulator, trusting its CA.
function sidecarConfig(world, profiles, refresh = {}) {
  return writeConfig(world.dir, {
    kms: { endpoints: [emu.endpoint] },
    tls: { ca_file: emu.caFile },
    profiles,
    output: { directory: path.join(world.dir, 'out') },
    refresh: { jitter: 0, rotation_jitter: '0s', ...refresh },
    log: { level: 'debug' },
  });
}

// What the official Node SDK's default credential chain finds, for `profile`,
// when ALIBABA_CLOUD_CREDENTIALS_FILE points at `file`: an app's view.
async function officialSdkCredential(file, profile) {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('ALIBABA_CLOUD_')) delete process.env[name];
  }
  process.env.ALIBABA_CLOUD_CREDENTIALS_FILE = file;
  process.env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED = 'true';
  process.env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = 'true';
  if (profile) process.env.ALIBABA_CLOUD_PROFILE = profile;
  try {
    const credential = new Credential();
    const model = await credential.getCredential();
    return { credential, model };
  } finally {
    for (const name of Object.keys(process.env)) {
      if (!(name in saved)) delete process.env[name];
    }
    Object.assign(process.env, saved);
  }
}

function credentialsFile(world) {
  return path.join(world.dir, 'out', 'credentials.ini');
}

describe('credsync run', () => {
  // Verifies the sidecar, given only the RRSA environment, writes
  // credentials.ini; the official SDK reads the same AccessKey from it; a
  // request signed with that key to the target service succeeds; the file
  // is a symlink into ..data with mode 0440.
  it('writes credentials the official SDK reads and uses', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'first', secrets: ['acs/ram/user/first-app'] });
    const expected = world.secrets['acs/ram/user/first-app'];
    const configFile = sidecarConfig(world, [{ name: 'default', secret_name: 'acs/ram/user/first-app' }]);
    const sc = await startSidecar({ configFile, env: world.env, name: 'first' });
    try {
      const file = credentialsFile(world);
      const content = await waitForFile(file);
      assert.match(content, /^\[default\]\nenable = true\ntype = access_key\n/);
      assert.equal(fs.lstatSync(file).isSymbolicLink(), true);
      assert.equal(fs.readlinkSync(file), '..data/credentials.ini');
      assert.equal(fs.statSync(file).mode & 0o777, 0o440);

      const { credential, model } = await officialSdkCredential(file);
      assert.equal(model.accessKeyId, expected.access_key_id);
      assert.equal(model.accessKeySecret, expected.access_key_secret);
      // The default chain found it through its ini-file provider, as a static AccessKey.
      assert.match(model.providerName, /^default\/profile/);
      const regions = await callRpc(makeOpenApiClient(emu.endpoint, { credential }),
                                    'DescribeRegions', ECS_VERSION, {});
      assert.ok(regions.Regions.Region.length > 0);

      const written = await sc.waitForLog((l) => l.msg === 'written', 'a "written" log line');
      assert.equal(written.access_key_id, expected.access_key_id);
      assert.equal(written.generation, 1);
      // At debug level, the log names the key but never its secret or the JWT.
      const log = sc.stderr();
      assert.ok(log.includes(expected.access_key_id));
      assert.ok(!log.includes(expected.access_key_secret), 'the AccessKeySecret is in the log');
      assert.ok(!log.includes(fs.readFileSync(world.tokenFile, 'utf8').trim()), 'the OIDC token is in the log');
    } finally {
      const stopped = await sc.stop();
      assert.equal(stopped.code, 0, sc.stderr());
      assert.ok(stopped.ms < 5000, `SIGTERM took ${stopped.ms} ms`);
    }
  });

  // Verifies a rotation in KMS reaches the file on the (shortened) schedule,
  // and the official SDK then reads the new key.
  it('follows a rotation on the refresh interval', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'rotate', secrets: ['acs/ram/user/rotate-app'] });
    const first = world.secrets['acs/ram/user/rotate-app'];
    const configFile = sidecarConfig(world, [{ name: 'default', secret_name: 'acs/ram/user/rotate-app' }],
                                     { interval: '2s' });
    const sc = await startSidecar({ configFile, env: world.env, name: 'rotate' });
    try {
      const file = credentialsFile(world);
      await waitForFile(file, (c) => c.includes(first.access_key_id));
      const rotated = await emu.admin('POST',
                                      `/admin/secrets/${encodeURIComponent('acs/ram/user/rotate-app')}/rotate`, {});
      await waitForFile(file, (c) => c.includes(rotated.access_key_id), 15000, 'show the rotated key');
      const { model } = await officialSdkCredential(file);
      assert.equal(model.accessKeyId, rotated.access_key_id);
      const line = await sc.waitForLog((l) => l.msg === 'rotated', 'a "rotated" log line');
      assert.equal(line.previous_access_key_id, first.access_key_id);
      assert.equal(line.generation, 2);
    } finally {
      await sc.stop();
    }
  });

  // Verifies the sidecar refreshes a few minutes (here: zero) after the
  // secret's NextRotationDate although its slow interval is an hour away.
  it('refreshes after the secret\'s NextRotationDate', async () => {
    const world = await setUpRrsaWorld(emu, {
      name: 'nextrot', secrets: ['acs/ram/user/nextrot-app'],
      secretOptions: { next_rotation_in_seconds: 4 },
    });
    const configFile = sidecarConfig(world, [{ name: 'default', secret_name: 'acs/ram/user/nextrot-app' }],
                                     { interval: '1h', rotation_delay: '0s' });
    const sc = await startSidecar({ configFile, env: world.env, name: 'nextrot' });
    try {
      const file = credentialsFile(world);
      await waitForFile(file);
      const rotated = await emu.admin('POST',
                                      `/admin/secrets/${encodeURIComponent('acs/ram/user/nextrot-app')}/rotate`, {});
      await waitForFile(file, (c) => c.includes(rotated.access_key_id), 20000, 'show the rotated key');
    } finally {
      await sc.stop();
    }
  });

  // Verifies two profiles from two secrets both appear, [default] first,
  // and the official SDK selects each by ALIBABA_CLOUD_PROFILE.
  it('writes two profiles from two secrets', async () => {
    const world = await setUpRrsaWorld(emu, {
      name: 'two', secrets: ['acs/ram/user/two-web', 'acs/ram/user/two-batch'],
    });
    const configFile = sidecarConfig(world, [
      { name: 'web', secret_name: 'acs/ram/user/two-web', default: true },
      { name: 'batch', secret_name: 'acs/ram/user/two-batch' },
    ]);
    const sc = await startSidecar({ configFile, env: world.env, name: 'two' });
    try {
      const file = credentialsFile(world);
      const content = await waitForFile(file, (c) => c.includes('[batch]'));
      assert.equal(content.indexOf('[default]'), 0);
      const web = world.secrets['acs/ram/user/two-web'];
      const batch = world.secrets['acs/ram/user/two-batch'];
      assert.equal((await officialSdkCredential(file)).model.accessKeyId, web.access_key_id);
      assert.equal((await officialSdkCredential(file, 'web')).model.accessKeyId, web.access_key_id);
      assert.equal((await officialSdkCredential(file, 'batch')).model.accessKeyId, batch.access_key_id);
    } finally {
      await sc.stop();
    }
  });
});

describe('credsync sync --once', () => {
  // Verifies a role without permission on one secret is reported clearly
  // (profile, KMS's code), nothing is written for that profile, the other
  // profile is written, and the command fails.
  it('reports a profile the role may not read and writes nothing for it', async () => {
    const world = await setUpRrsaWorld(emu, {
      name: 'denied', secrets: ['acs/ram/user/denied-ok', 'acs/ram/user/denied-no'],
      readable: ['acs/ram/user/denied-ok'],
    });
    const configFile = sidecarConfig(world, [
      { name: 'default', secret_name: 'acs/ram/user/denied-ok' },
      { name: 'forbidden', secret_name: 'acs/ram/user/denied-no' },
    ]);
    const result = await runCredsync(['sync', '--once', '--config', configFile, '--timeout', '20s'],
                                     { env: world.env, name: 'denied' });
    assert.equal(result.code, 1, result.stderr);
    const content = fs.readFileSync(credentialsFile(world), 'utf8');
    assert.match(content, /\[default\]/);
    assert.doesNotMatch(content, /\[forbidden\]/);
    const logs = parseLogLines(result.stderr);
    const failure = logs.find((l) => l.msg === 'fetch failed' && l.profile === 'forbidden');
    assert.ok(failure, result.stderr);
    assert.match(failure.error, /Forbidden\.NoPermission/);
    assert.equal(failure.retryable, false);
    assert.ok(logs.some((l) => l.msg === 'profile not written' && l.profile === 'forbidden'));
  });

  // Verifies an expired OIDC token file is reported with STS's code and no
  // file is written.
  it('reports an expired OIDC token with STS\'s code', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'expired', secrets: ['acs/ram/user/expired-app'] });
    await emu.admin('POST', '/admin/oidc/tokens',
                    { subject: world.subject, ttl_seconds: -600, file: world.tokenFile });
    const configFile = sidecarConfig(world, [{ name: 'default', secret_name: 'acs/ram/user/expired-app' }]);
    const result = await runCredsync(['sync', '--once', '--config', configFile, '--timeout', '20s'],
                                     { env: world.env, name: 'expired' });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /AuthenticationFail\.OIDCToken\.Expired/);
    assert.equal(fs.existsSync(credentialsFile(world)), false);
  });

  // Verifies a successful one-shot sync exits 0 with the file in place.
  it('exits 0 when every profile is written', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'once', secrets: ['acs/ram/user/once-app'] });
    const configFile = sidecarConfig(world, [{ name: 'default', secret_name: 'acs/ram/user/once-app' }]);
    const result = await runCredsync(['sync', '--once', '--config', configFile],
                                     { env: world.env, name: 'once' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(fs.readFileSync(credentialsFile(world), 'utf8'),
                 new RegExp(world.secrets['acs/ram/user/once-app'].access_key_id));
  });
});

describe('bad input', () => {
  // Verifies a bad config value exits 2 with one line naming the key, and
  // nothing is written.
  it('a bad value names its key, exits 2 and writes nothing', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'badcfg', secrets: ['acs/ram/user/badcfg-app'] });
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      profiles: [{ name: 'default', secret_name: 'acs/ram/user/badcfg-app' }],
      output: { directory: path.join(world.dir, 'out') },
      refresh: { interval: 'soon' },
    });
    for (const command of [['validate'], ['run'], ['sync', '--once']]) {
      const result = await runCredsync([...command, '--config', configFile],
                                       { env: world.env, name: 'badcfg' });
      assert.equal(result.code, 2, `${command}: ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0], /refresh\.interval/);
    }
    assert.equal(fs.existsSync(path.join(world.dir, 'out')), false);
  });

  // Verifies `version` prints the version, and an unknown command or flag
  // exits 2 with the usage.
  it('version, unknown command and unknown flag', async () => {
    const version = await runCredsync(['version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^credsync \d+\.\d+\.\d+\n$/);
    const unknown = await runCredsync(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const badFlag = await runCredsync(['run', '--config', '/nonexistent.yaml', '--colour']);
    assert.equal(badFlag.code, 2);
    assert.equal(badFlag.stderr.trim(), 'credsync: --colour: unknown flag');
  });

  // Verifies validate accepts a good config and says what it found.
  it('validate accepts a good config', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'goodcfg', secrets: ['acs/ram/user/goodcfg-app'] });
    const configFile = sidecarConfig(world, [{ name: 'default', secret_name: 'acs/ram/user/goodcfg-app' }]);
    const result = await runCredsync(['validate', '--config', configFile], { env: world.env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /config OK: identity oidc, 1 profile/);
  });
});
