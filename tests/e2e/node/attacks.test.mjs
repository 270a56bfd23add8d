// Hostile clients against the real binary (issue 16): while another process
// holds thousands of idle or trickling connections on credsync's probe
// port, or opens and closes connections as fast as it can, every kubelet-
// style probe (a fresh connection, a one-second timeout) is answered, and
// the counters say what was shed. Loopback only; each attack is bounded in
// connections and in time.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startAttacker } from './attacker.mjs';
import { startEmulator } from './emulator.mjs';
import { httpGet, setUpRrsaWorld, startSidecar, waitForFile, writeConfig } from './sidecar.mjs';

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
