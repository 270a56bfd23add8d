// KMS endpoint failover and the circuit breaker, end to end (issue 8): the
// real credsync binary against the emulator over TLS, with two KMS endpoints
// that are two TCP proxies in front of the same emulator, so one can be made
// to reset every connection (a dead endpoint) while the other works.
//   - endpoints are tried in order; while the first works, the second is
//     never contacted;
//   - a dead first endpoint costs one failed attempt per fetch and the
//     second answers; after kms.circuit_failure_threshold such failures its
//     circuit opens (metrics), and fetches skip it: no connection is made;
//   - when the open period ends, one fetch probes it; once it works again
//     the circuit closes and it is used first again;
//   - with every endpoint dead, a Refresh fails UNAVAILABLE naming the
//     failures and the file keeps the last good key; once one endpoint is
//     back, the next Refresh succeeds (the breaker never refuses locally);
//   - the same list given the official way, as the secrets-manager clients'
//     cache_client_region_id variable, is used in its order and beats
//     ALIBABA_CLOUD_REGION_ID.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_failover).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startEmulator } from './emulator.mjs';
import { connectControl, status } from './grpc_client.mjs';
import {
  httpGet, runCredsync, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig,
} from './sidecar.mjs';
import { startTcpProxy } from './tcp_proxy.mjs';

const OPEN_FOR_MS = 1500;

function circuitState(metricsText, url) {
  for (const state of ['closed', 'open', 'half_open']) {
    const line = `credsync_kms_endpoint_circuit_state{endpoint="${url}",state="${state}"} 1`;
    if (metricsText.includes(line)) return state;
  }
  return undefined;
}

function timesOpened(metricsText, url) {
  const match = metricsText.match(
    new RegExp(`credsync_kms_endpoint_circuit_opened_total\\{endpoint="${url.replace(/[.]/g, '\\.')}"\\} (\\d+)`));
  return match ? Number(match[1]) : undefined;
}

describe('KMS endpoint failover with a circuit breaker', () => {
  let emu;
  let first;
  let second;
  let sc;
  let api;
  let httpAddress;
  let file;
  const secret = 'acs/ram/user/failover';

  before(async () => {
    emu = await startEmulator();
    first = await startTcpProxy(emu.port);
    second = await startTcpProxy(emu.port);
    const world = await setUpRrsaWorld(emu, { name: 'failover', secrets: [secret] });
    const out = path.join(world.dir, 'out');
    file = path.join(out, 'credentials.ini');
    const configFile = writeConfig(world.dir, {
      kms: {
        endpoints: [first.url, second.url],
        circuit_failure_threshold: 2,
        circuit_open_for: `${OPEN_FOR_MS}ms`,
        circuit_max_open_for: `${4 * OPEN_FOR_MS}ms`,
      },
      tls: { ca_file: emu.caFile },
      http: { connect_timeout: '1s', request_timeout: '2s' },
      profiles: [{ name: 'default', secret_name: secret }],
      output: { directory: out },
      refresh: { interval: '1h', on_demand_burst: 100, retry_initial_backoff: '5s', retry_max_backoff: '5s' },
    });
    sc = await startSidecar({ configFile, env: world.env, name: 'failover' });
    api = connectControl(`unix:${await sc.listening('unix')}`);
    httpAddress = await sc.listening('http');
    await waitForFile(file);
  });

  after(async () => {
    api?.close();
    await sc?.stop();
    await first?.close();
    await second?.close();
    await emu?.stop();
  });

  const metrics = async () => (await httpGet(httpAddress, '/metrics')).text;
  const currentKey = async () => (await api.getStatus()).response.profiles[0].access_key_id;
  // Rotates the secret and asks for the new key, as an app whose key was
  // rejected does; resolves the Refresh response.
  const rotateAndRefresh = async () => {
    const failed = await currentKey();
    await emu.admin('POST', `/admin/secrets/${encodeURIComponent(secret)}/rotate`, {});
    const { response } = await api.refresh({ profile: 'default', failed_access_key_id: failed });
    assert.equal(response.outcome, 'OUTCOME_REFRESHED');
    assert.notEqual(response.access_key_id, failed);
    return response;
  };

  it('uses the first endpoint while it works', async () => {
    const before = second.connections();
    await rotateAndRefresh();
    await rotateAndRefresh();
    assert.equal(second.connections(), before, 'the second endpoint was contacted');
    const text = await metrics();
    assert.equal(circuitState(text, first.url), 'closed');
    assert.equal(circuitState(text, second.url), 'closed');
    assert.equal(timesOpened(text, first.url), 0);
  });

  it('fails over, opens the dead endpoint\'s circuit, then skips it', async () => {
    first.refuse(true);
    const attempts = first.connections();
    const response = await rotateAndRefresh();
    assert.equal(first.connections(), attempts + 1);
    assert.ok(second.connections() > 0);
    assert.equal(circuitState(await metrics(), first.url), 'closed', 'opened after one failure');

    await rotateAndRefresh();
    assert.equal(first.connections(), attempts + 2);
    let text = await metrics();
    assert.equal(circuitState(text, first.url), 'open');
    assert.equal(timesOpened(text, first.url), 1);
    assert.ok(sc.logs().some((l) => l.msg.startsWith('KMS endpoint circuit opened') && l.endpoint === first.url));

    // Open: the dead endpoint is not even dialled.
    await rotateAndRefresh();
    await rotateAndRefresh();
    assert.equal(first.connections(), attempts + 2, 'an open circuit was dialled');
    text = await metrics();
    assert.equal(circuitState(text, second.url), 'closed');
    assert.ok(fs.readFileSync(file, 'utf8').includes(response.access_key_id) === false);
  });

  it('probes after the open period: a failed probe reopens it, a good one closes it', async () => {
    await delay(OPEN_FOR_MS + 100);
    const attempts = first.connections();
    await rotateAndRefresh();  // the probe: still dead
    assert.equal(first.connections(), attempts + 1);
    let text = await metrics();
    assert.equal(circuitState(text, first.url), 'open');
    assert.equal(timesOpened(text, first.url), 2);

    first.refuse(false);
    // Reopened for twice as long: still skipped right now.
    await rotateAndRefresh();
    assert.equal(first.connections(), attempts + 1);
    await delay(2 * OPEN_FOR_MS + 100);
    const secondBefore = second.connections();
    await rotateAndRefresh();  // the probe succeeds
    text = await metrics();
    assert.equal(circuitState(text, first.url), 'closed');
    assert.ok(sc.logs().some((l) => l.msg === 'KMS endpoint answered again; circuit closed' && l.endpoint === first.url));
    await rotateAndRefresh();
    assert.equal(second.connections(), secondBefore, 'the second endpoint was used after recovery');
  });

  it('with every endpoint dead, Refresh fails and the file keeps the last good key', async () => {
    const bytes = fs.readFileSync(file);
    const failed = await currentKey();
    first.refuse(true);
    second.refuse(true);
    await emu.admin('POST', `/admin/secrets/${encodeURIComponent(secret)}/rotate`, {});
    await assert.rejects(api.refresh({ profile: 'default', failed_access_key_id: failed }), (err) => {
      assert.equal(err.code, status.UNAVAILABLE);
      assert.match(err.details, /all 2 KMS endpoints failed/);
      return true;
    });
    assert.deepEqual(fs.readFileSync(file), bytes);

    // Both circuits open after enough failures; still, once one endpoint is
    // back the next Refresh gets through.
    await assert.rejects(api.refresh({ profile: 'default', failed_access_key_id: failed }));
    const text = await metrics();
    assert.equal(circuitState(text, first.url), 'open');
    assert.equal(circuitState(text, second.url), 'open');
    second.refuse(false);
    const { response } = await api.refresh({ profile: 'default', failed_access_key_id: failed });
    assert.equal(response.outcome, 'OUTCOME_REFRESHED');
    await until(() => fs.readFileSync(file, 'utf8').includes(response.access_key_id), 'the new key in the file');
  });
});

describe('the official cache_client_region_id list', () => {
  it('gives the endpoints in its order, beats ALIBABA_CLOUD_REGION_ID, and fails over', async () => {
    const emu = await startEmulator();
    const first = await startTcpProxy(emu.port);
    const second = await startTcpProxy(emu.port);
    let sc;
    let api;
    try {
      const secret = 'acs/ram/user/regions';
      const world = await setUpRrsaWorld(emu, { name: 'regions', secrets: [secret] });
      const out = path.join(world.dir, 'out');
      const configFile = writeConfig(world.dir, {
        kms: { circuit_failure_threshold: 2 },
        tls: { ca_file: emu.caFile },
        http: { connect_timeout: '1s', request_timeout: '2s' },
        profiles: [{ name: 'default', secret_name: secret }],
        output: { directory: out },
      });
      const env = {
        ...world.env,
        // Would name the unreachable public gateway if the list lost to it.
        ALIBABA_CLOUD_REGION_ID: 'cn-beijing',
        cache_client_region_id: JSON.stringify([
          { regionId: 'cn-hangzhou', endpoint: first.url },
          { regionId: 'cn-hangzhou', endpoint: second.url, vpc: true },
        ]),
      };
      const validated = await runCredsync(['validate', '--config', configFile], { env });
      assert.equal(validated.code, 0, validated.stderr);
      // STS stays the emulator the environment names (an explicit endpoint
      // beats the KMS region it would otherwise follow).
      assert.match(validated.stdout, new RegExp(`KMS ${first.url}, ${second.url}, STS https://${emu.endpoint}, output`));

      first.refuse(true);
      sc = await startSidecar({ configFile, env, name: 'regions' });
      api = connectControl(`unix:${await sc.listening('unix')}`);
      const httpAddress = await sc.listening('http');
      const file = path.join(out, 'credentials.ini');
      await waitForFile(file, (text) => text.includes(world.secrets[secret].access_key_id));
      assert.ok(first.connections() >= 1, 'the first region was not tried first');
      assert.ok(second.connections() >= 1);
      const text = (await httpGet(httpAddress, '/metrics')).text;
      assert.ok(circuitState(text, first.url) !== undefined, text);
      assert.equal(circuitState(text, second.url), 'closed');
    } finally {
      api?.close();
      await sc?.stop();
      await first.close();
      await second.close();
      await emu.stop();
    }
  });
});
