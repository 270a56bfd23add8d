// Hostile clients against the real binary (issue 16): while another process
// holds thousands of idle or trickling connections on credsync's probe
// port, or opens and closes connections as fast as it can, every kubelet-
// style probe (a fresh connection, a one-second timeout) is answered, and
// the counters say what was shed; while one floods the control socket with
// connections and Watch streams under a low descriptor limit, a rotation
// still reaches the file. Loopback and a temporary directory only; each
// attack is bounded in connections and in time.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startAttacker } from './attacker.mjs';
import { startEmulator } from './emulator.mjs';
import { connectControl, status } from './grpc_client.mjs';
import { httpGet, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig } from './sidecar.mjs';

// The kubelet's default probe timeout.
const PROBE_TIMEOUT_MS = 1000;

let emu;
before(async () => { emu = await startEmulator(); });
after(async () => { await emu?.stop(); });

// What the kubelet does every period: a fresh connection, GET, one second.
// `times` rounds of /healthz and /readyz, 100 ms apart.
async function probeRepeatedly(address, times) {
  const latencies = [];
  for (let i = 0; i < times; i += 1) {
    if (i > 0) await delay(100);
    for (const probePath of ['/healthz', '/readyz']) {
      const started = process.hrtime.bigint();
      const answer = await httpGet(address, probePath, { timeoutMs: PROBE_TIMEOUT_MS });
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      assert.equal(answer.status, 200, `${probePath} under attack: ${answer.status} ${answer.text}`);
    }
  }
  return latencies;
}

function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('attacks on the probe port', () => {
  let world;
  let sc;
  let address;
  before(async () => {
    world = await setUpRrsaWorld(emu, { name: 'attacks', secrets: ['acs/ram/user/attacks-app'] });
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: 'acs/ram/user/attacks-app' }],
      output: { directory: path.join(world.dir, 'out') },
    });
    sc = await startSidecar({ configFile, env: world.env, name: 'attacks' });
    address = await sc.listening('http');
    await waitForFile(path.join(world.dir, 'out', 'credentials.ini'));
  });
  after(async () => { await sc?.stop(); });

  // Verifies 2,000 silent connections delay no probe.
  it('answers probes while 2,000 idle connections are held', async () => {
    const attacker = await startAttacker('idle', address, 2000);
    try {
      await probeRepeatedly(address, 10);
    } finally {
      await attacker.stop();
    }
  });

  // Verifies 500 connections trickling a byte a second delay no probe.
  it('answers probes while 500 connections trickle a byte a second', async () => {
    const attacker = await startAttacker('trickle', address, 500);
    try {
      await probeRepeatedly(address, 10);
    } finally {
      await attacker.stop();
    }
  });

  // Verifies a connect/close storm delays no probe.
  it('answers probes during a connect/close storm', async () => {
    const attacker = await startAttacker('storm', address, 64);
    let report;
    try {
      await probeRepeatedly(address, 15);
    } finally {
      report = await attacker.stop();
    }
    assert.ok(report.connects > 100, `the storm connected ${report.connects} times`);
  });

  // Verifies the counters: connections accepted, and the probe server's
  // gauges present.
  it('reports its connections in /metrics', async () => {
    const { text } = await httpGet(address, '/metrics');
    assert.ok(metric(text, 'credsync_listener_connections_accepted_total{listener="http"}') > 2000, text);
    assert.notEqual(metric(text, 'credsync_listener_connections{listener="http"}'), undefined, text);
  });
});

describe('attacks on the control socket', () => {
  const SECRET = 'acs/ram/user/attacks-ctl';
  let world;
  let sc;
  let socket;
  let address;
  const file = () => path.join(world.dir, 'out', 'credentials.ini');
  before(async () => {
    world = await setUpRrsaWorld(emu, { name: 'attacksctl', secrets: [SECRET] });
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: SECRET }],
      output: { directory: path.join(world.dir, 'out') },
      refresh: { interval: '2s' },
    });
    // 700 descriptors: the 256 kept for publishing leave 444, of which the
    // Unix listener may hold a quarter (111 connections).
    sc = await startSidecar({ configFile, env: world.env, name: 'attacksctl',
                              launcher: ['prlimit', '--nofile=700:700', '--'] });
    socket = await sc.listening('unix');
    address = await sc.listening('http');
    await waitForFile(file());
  });
  after(async () => { await sc?.stop(); });

  // Verifies that with 1,500 connections thrown at the control socket (more
  // than the descriptors the process may use) a rotation still reaches the
  // file, probes are answered, the refusals are counted, at most the
  // listener's share of descriptors is held, and the socket serves a
  // Refresh once the flood ends.
  it('rotates while the control socket is flooded with connections', async () => {
    const attacker = await startAttacker('idle', socket, 1500);
    try {
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
      await waitForFile(file(), (c) => c.includes(rotated.access_key_id), 20000, 'show the rotated key');
      await probeRepeatedly(address, 3);
      const { text } = await httpGet(address, '/metrics');
      const refused = ['limit', 'descriptor_reserve'].map(
        (reason) => metric(text, `credsync_listener_connections_refused_total{listener="unix",reason="${reason}"}`));
      assert.ok(refused[0] + refused[1] > 0, text);
      // 700 descriptors: the listener's limit is a quarter of 700 - 256.
      assert.ok(metric(text, 'credsync_listener_connections{listener="unix"}') <= 111, text);
    } finally {
      await attacker.stop();
    }
    // The flood's connections close as the attacker exits; until credsync's
    // loop has seen those closes the listener may still be at its limit and
    // refuse a new connection (UNAVAILABLE, as any app's first retry would
    // see). Once seen, a Refresh is served.
    const response = await until(async () => {
      const client = connectControl(`unix:${socket}`);
      try {
        return (await client.refresh({ profile: 'default', failed_access_key_id: 'AK-GONE' })).response;
      } catch (err) {
        if (err.code !== 14) throw err;  // UNAVAILABLE: not served yet
        return null;
      } finally {
        client.close();
      }
    }, 'a Refresh served after the flood', 10000, 200);
    assert.equal(response.outcome, 'OUTCOME_ALREADY_CURRENT');
  });

  // Verifies Watch streams beyond the cap are refused at once and a
  // rotation still reaches the file and the streams that were admitted.
  it('refuses Watch streams beyond its cap and still rotates', async () => {
    // 100 streams each on 11 connections (the server's per-connection limit).
    const clients = Array.from({ length: 11 }, () => connectControl(`unix:${socket}`, {
      channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
    }));
    const streams = [];
    try {
      for (const client of clients) {
        for (let i = 0; i < 100; i += 1) streams.push(client.watch({ profile: 'default' }));
      }
      const first = await streams[0].next();
      assert.equal(first.initial, true);
      const refused = await Promise.race([
        Promise.any(streams.map((s) => s.ended.then((e) => (e.code === status.RESOURCE_EXHAUSTED ? e : Promise.reject())))),
        delay(20000).then(() => null),
      ]);
      assert.ok(refused, 'no Watch was refused');
      assert.match(refused.details, /1024 streams are open/);
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
      await waitForFile(file(), (c) => c.includes(rotated.access_key_id), 20000, 'show the rotated key');
      let change = await streams[0].next(20000);
      while (change.initial) change = await streams[0].next(20000);
      assert.equal(change.access_key_id, rotated.access_key_id);
    } finally {
      for (const s of streams) s.cancel();
      for (const client of clients) client.close();
    }
  });
});
