// The sidecar reading KMS instances with a client key (issue 8), end to
// end: the real credsync binary against the emulator's instance gateways
// (dkms-gcs-0.2 over TLS with the instance CA), configured the way the
// console hands things out (clientKey_<id>.json, the password file).
//   - instances only, no RAM identity at all: the file is written from the
//     first instance, a rotation arrives through Refresh, the second instance
//     is never asked while the first works;
//   - the password from an environment variable works the same;
//   - a fault on the first instance fails over to the second; after
//     kms.circuit_failure_threshold failures its circuit opens and it is not
//     asked; once it recovers, a probe closes the circuit;
//   - instances next to an OpenAPI endpoint (RRSA): with both instances
//     failing the OpenAPI endpoint answers;
//   - a wrong instance CA fails TLS and fails over;
//   - a client key replaced in a Secret-style volume (the kubelet's "..data"
//     switch) signs from the next request on, and one that cannot be loaded
//     keeps the previous key;
//   - a wrong password is bad input: exit 2 with one line naming the
//     instance, nothing written.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_instances).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startEmulator } from './emulator.mjs';
import { connectControl } from './grpc_client.mjs';
import {
  httpGet, runCredsync, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig,
} from './sidecar.mjs';

const A = 'kst-hzz0001';
const B = 'kst-hzz0002';
const SECRET = 'acs/ram/user/instance-app';
const OPEN_FOR_MS = 1500;

function iniKey(file) {
  const match = fs.readFileSync(file, 'utf8').match(/access_key_id\s*=\s*(\S+)/);
  return match ? match[1] : undefined;
}

function circuitState(metricsText, url) {
  for (const state of ['closed', 'open', 'half_open']) {
    if (metricsText.includes(`credsync_kms_endpoint_circuit_state{endpoint="${url}",state="${state}"} 1`)) {
      return state;
    }
  }
  return undefined;
}

describe('KMS instances with a client key', () => {
  let emu;
  let key;
  let dir;
  const instanceOf = (id) => emu.kmsInstance(id);
  // The instance as the sidecar's config names it: loopback, its port; the
  // instance CA's certificates also carry 127.0.0.1.
  const instanceConfig = (id, extra = {}) => ({
    endpoint: `https://127.0.0.1:${instanceOf(id).port}`,
    region_id: 'cn-hangzhou',
    client_key_file: key.client_key_file,
    password_file: key.password_file,
    ca_file: instanceOf(id).caFile,
    ...extra,
  });
  const requests = async (id) =>
    (await emu.admin('GET', '/admin/counters')).actions?.[`${id}/GetSecretValue`]?.requests ?? 0;

  before(async () => {
    emu = await startEmulator({ kmsInstances: [A, B], seed: { secrets: [{ name: SECRET }] } });
    key = await emu.admin('POST', '/admin/kms-instance/client-keys', { secrets: [SECRET] });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-instances-'));
  });

  after(async () => {
    await emu?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startWith(name, kms, { env = {}, refresh = {} } = {}) {
    const out = path.join(dir, name);
    const configFile = writeConfig(dir, {
      kms: { circuit_failure_threshold: 2, circuit_open_for: `${OPEN_FOR_MS}ms`, ...kms },
      // The emulator's test CA, for STS and the OpenAPI endpoint; each
      // instance names its own CA.
      tls: { ca_file: emu.caFile },
      http: { connect_timeout: '1s', request_timeout: '2s' },
      profiles: [{ name: 'default', secret_name: SECRET }],
      output: { directory: out },
      refresh: { interval: '1h', on_demand_burst: 100, retry_initial_backoff: '5s', retry_max_backoff: '5s', ...refresh },
    });
    const sc = await startSidecar({ configFile, env, name });
    const api = connectControl(`unix:${await sc.listening('unix')}`);
    const httpAddress = await sc.listening('http');
    const file = path.join(out, 'credentials.ini');
    await waitForFile(file);
    return {
      sc, api, file,
      metrics: async () => (await httpGet(httpAddress, '/metrics')).text,
      async rotateAndRefresh() {
        const failed = iniKey(file);
        await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
        const { response } = await api.refresh({ profile: 'default', failed_access_key_id: failed });
        assert.equal(response.outcome, 'OUTCOME_REFRESHED');
        assert.notEqual(response.access_key_id, failed);
        await until(() => iniKey(file) === response.access_key_id, 'the new key in the file');
        return response;
      },
      async stop() {
        api.close();
        return sc.stop();
      },
    };
  }

  it('instances only: no RAM identity, the first instance serves, rotations arrive', async () => {
    await emu.admin('DELETE', '/admin/counters');
    const c = await startWith('only', { instances: [instanceConfig(A), instanceConfig(B)] });
    try {
      const current = await emu.admin('GET', `/admin/secrets/${encodeURIComponent(SECRET)}`);
      assert.equal(iniKey(c.file), current.versions.at(-1).access_key_id);
      await c.rotateAndRefresh();
      assert.ok(await requests(A) >= 2);
      assert.equal(await requests(B), 0, 'the second instance was asked');
      const status = (await c.api.getStatus()).response;
      assert.equal(status.identity.type, 'none');
      const started = c.sc.logs().find((l) => l.msg === 'KMS instance client key loaded');
      assert.equal(started.key_id, key.key_id);
    } finally {
      await c.stop();
    }
  });

  it('the password can come from an environment variable', async () => {
    const password = fs.readFileSync(key.password_file, 'utf8');
    const c = await startWith('env-password', {
      instances: [instanceConfig(A, { password_file: undefined, password_env: 'CK_PASSWORD' })],
    }, { env: { CK_PASSWORD: password } });
    try {
      await c.rotateAndRefresh();
    } finally {
      await c.stop();
    }
  });

  it('fails over between instances, opens the failing one\'s circuit, closes it after recovery', async () => {
    const urlA = `https://127.0.0.1:${instanceOf(A).port}`;
    const c = await startWith('failover', { instances: [instanceConfig(A), instanceConfig(B)] });
    try {
      await emu.admin('POST', '/admin/faults',
        { action: 'GetSecretValue', kind: 'http_5xx', status: 503, instance: A });
      await emu.admin('DELETE', '/admin/counters');
      await c.rotateAndRefresh();
      await c.rotateAndRefresh();
      assert.equal(await requests(A), 2);
      assert.equal(await requests(B), 2);
      assert.equal(circuitState(await c.metrics(), urlA), 'open');
      // Open: A is not asked.
      await c.rotateAndRefresh();
      assert.equal(await requests(A), 2);
      await emu.admin('DELETE', '/admin/faults');
      await delay(OPEN_FOR_MS + 100);
      await c.rotateAndRefresh();
      assert.equal(await requests(A), 3);
      assert.equal(circuitState(await c.metrics(), urlA), 'closed');
      assert.ok(c.sc.logs().some((l) => l.msg === 'KMS endpoint answered again; circuit closed'));
    } finally {
      await emu.admin('DELETE', '/admin/faults');
      await c.stop();
    }
  });

  it('instances first, then the OpenAPI endpoint with the RRSA identity', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'mixed', secrets: [], readable: [SECRET] });
    const c = await startWith('mixed', {
      instances: [instanceConfig(A), instanceConfig(B)],
      endpoints: [emu.endpoint],
    }, { env: world.env });
    try {
      await emu.admin('POST', '/admin/faults',
        { action: 'GetSecretValue', kind: 'http_5xx', status: 503, instance: '*' });
      await emu.admin('DELETE', '/admin/counters');
      await c.rotateAndRefresh();
      const counters = (await emu.admin('GET', '/admin/counters')).actions;
      assert.equal(counters['GetSecretValue']?.successes, 1, JSON.stringify(counters));
      assert.equal(counters[`${A}/GetSecretValue`].requests, 1);
      assert.equal(counters[`${B}/GetSecretValue`].requests, 1);
      assert.equal(counters['AssumeRoleWithOIDC'].successes, 1);
    } finally {
      await emu.admin('DELETE', '/admin/faults');
      await c.stop();
    }
  });

  it('a wrong instance CA fails TLS on that instance and fails over', async () => {
    const c = await startWith('wrong-ca', {
      instances: [instanceConfig(A, { ca_file: emu.caFile }), instanceConfig(B)],
    });
    try {
      await emu.admin('DELETE', '/admin/counters');
      await c.rotateAndRefresh();
      assert.equal(await requests(A), 0, 'a request reached A over an untrusted TLS session');
      assert.equal(await requests(B), 1);
      assert.ok(c.sc.logs().some((l) => l.msg === 'KMS endpoint failed' && /127\.0\.0\.1/.test(l.endpoint)));
    } finally {
      await c.stop();
    }
  });

  it('a client key replaced in its Secret volume signs from the next request on, with no restart', async () => {
    // The layout the kubelet gives a Secret volume: each file a symlink
    // through "..data" to a timestamped directory, and an update switches
    // "..data" with one rename.
    const volume = path.join(dir, 'client-key-volume');
    fs.mkdirSync(volume);
    let generation = 0;
    const publish = (files) => {
      const name = `..2026_11_24_00_00_0${++generation}`;
      fs.mkdirSync(path.join(volume, name));
      for (const [file, content] of Object.entries(files)) {
        fs.writeFileSync(path.join(volume, name, file), content);
      }
      fs.symlinkSync(name, path.join(volume, '..data_tmp'));
      fs.renameSync(path.join(volume, '..data_tmp'), path.join(volume, '..data'));
    };
    const filesOf = (k) => ({
      'clientKey.json': fs.readFileSync(k.client_key_file),
      password: fs.readFileSync(k.password_file),
    });
    publish(filesOf(key));
    fs.symlinkSync('..data/clientKey.json', path.join(volume, 'clientKey.json'));
    fs.symlinkSync('..data/password', path.join(volume, 'password'));

    const endpoint = instanceConfig(A).endpoint;
    const c = await startWith('key-reload', {
      instances: [instanceConfig(A, {
        client_key_file: path.join(volume, 'clientKey.json'),
        password_file: path.join(volume, 'password'),
      })],
    });
    try {
      // A new key for the same secrets, then the old one disabled: from now
      // on only a request signed with the new key is answered.
      const second = await emu.admin('POST', '/admin/kms-instance/client-keys', { secrets: [SECRET] });
      publish(filesOf(second));
      await emu.admin('POST', `/admin/kms-instance/client-keys/${encodeURIComponent(key.key_id)}/disable`, {});
      await c.rotateAndRefresh();
      const reloaded = c.sc.logs().find((l) => l.msg === 'KMS instance client key reloaded');
      assert.ok(reloaded, 'no reload logged');
      assert.equal(reloaded.key_id, second.key_id);
      assert.equal(reloaded.previous_key_id, key.key_id);
      assert.equal(reloaded.endpoint, endpoint);

      // A replacement that does not load (a key under another password)
      // keeps the second key signing, says why once, never the key.
      publish({ ...filesOf(second), password: 'not-the-password' });
      await c.rotateAndRefresh();
      await c.rotateAndRefresh();
      const warnings = c.sc.logs().filter((l) => l.msg.startsWith('KMS instance client key changed but cannot be loaded'));
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(warnings[0].error, /wrong password/);
      assert.equal(warnings[0].key_id, second.key_id);
      assert.ok(!c.sc.stderr().includes('not-the-password'), 'the password was logged');
      const metrics = await c.metrics();
      assert.ok(metrics.includes(`credsync_kms_instance_client_key_reloads_total{endpoint="${endpoint}",result="ok"} 1`), metrics);
      assert.ok(metrics.includes(`credsync_kms_instance_client_key_reloads_total{endpoint="${endpoint}",result="error"} 1`), metrics);
    } finally {
      await emu.admin('POST', `/admin/kms-instance/client-keys/${encodeURIComponent(key.key_id)}/enable`, {});
      await c.stop();
    }
  });

  it('a wrong client-key password is bad input: exit 2, one line naming the instance, nothing written', async () => {
    const wrong = path.join(dir, 'wrong-password.txt');
    fs.writeFileSync(wrong, 'not-the-password');
    const out = path.join(dir, 'bad-password');
    const configFile = writeConfig(dir, {
      kms: { instances: [instanceConfig(A, { password_file: wrong })] },
      profiles: [{ name: 'default', secret_name: SECRET }],
      output: { directory: out },
    });
    for (const command of [['validate'], ['run'], ['sync', '--once']]) {
      const r = await runCredsync([...command, '--config', configFile]);
      assert.equal(r.code, 2, `${command}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /KMS instance https:\/\/127\.0\.0\.1:\d+: .*password/i);
      assert.equal(fs.existsSync(path.join(out, 'credentials.ini')), false);
    }
  });
});
