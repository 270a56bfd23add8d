// Probes under attack: the latency of kubelet-style probes (a fresh
// connection, GET /healthz, a one-second timeout) while another process holds
// N idle connections to credsync's probe port (reopening those credsync
// sheds), for N up to 10,000, and during a connect/close storm. A benchmark,
// not a test: it prints figures and asserts nothing about time; the same
// attacks are e2e_node_attacks, which asserts that every probe is answered.
//
//   bench/run probes            (bootstraps the emulator's PKI, then runs this)
//   bench/run --smoke probes    (tiny counts, for CI)
//
// Each row is compared with the first (no attacker) of the same run, as a
// ratio: the machine is shared and noisy. Knobs: PROBES_COUNT (probes per
// row, default 300), PROBES_HELD (comma-separated N, default
// 0,1000,5000,10000).

import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { startAttacker } from '../tests/e2e/node/attacker.mjs';
import { startEmulator } from '../tests/e2e/node/emulator.mjs';
import {
  IMAGE_ENV, httpGet, setUpRrsaWorld, startSidecar, waitForFile, writeConfig,
} from '../tests/e2e/node/sidecar.mjs';
import { sample } from './lib/proc.mjs';
import { percentile } from './lib/stats.mjs';

const smoke = process.argv.includes('--smoke');
const PROBES = Number(process.env.PROBES_COUNT || (smoke ? 10 : 300));
const HELD = (process.env.PROBES_HELD || (smoke ? '0,50' : '0,1000,5000,10000'))
  .split(',').map(Number);
const SECRET = 'acs/ram/user/probes-app';


async function measure(address) {
  const latencies = [];
  let failures = 0;
  for (let i = 0; i < PROBES; i += 1) {
    const started = process.hrtime.bigint();
    try {
      const answer = await httpGet(address, '/healthz', { timeoutMs: 1000 });
      if (answer.status !== 200) failures += 1;
    } catch {
      failures += 1;
    }
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    await delay(5);
  }
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1), failures };
}

const emu = await startEmulator({ logLevel: 'warn' });
const world = await setUpRrsaWorld(emu, { name: 'probes', secrets: [SECRET] });
const configFile = writeConfig(world.dir, {
  kms: { endpoints: [emu.endpoint] },
  tls: { ca_file: emu.caFile },
  profiles: [{ name: 'default', secret_name: SECRET }],
  output: { directory: path.join(world.dir, 'out') },
});
const sc = await startSidecar({ configFile, env: { ...IMAGE_ENV, ...world.env }, name: 'probes' });
const rows = [];
try {
  const address = await sc.listening('http');
  await waitForFile(path.join(world.dir, 'out', 'credentials.ini'));
  const attacks = [...HELD.map((n) => ['idle', n]), ['storm', smoke ? 8 : 64]];
  for (const [mode, n] of attacks) {
    const attacker = n > 0 ? await startAttacker(mode, address, n) : null;
    try {
      const figures = await measure(address);
      const proc = sample(sc.pid);
      rows.push({ attack: n === 0 ? 'none' : `${mode} ${n}`, ...figures, rssMiB: proc.rssKiB / 1024, fds: proc.fds });
    } finally {
      await attacker?.stop();
    }
  }
  const { text } = await httpGet(address, '/metrics');
  const counter = (name) => Number((text.split('\n').find((l) => l.startsWith(name)) ?? ' NaN').split(' ').at(-1));
  const base = rows[0];
  console.log(`probes: ${PROBES} per row, GET /healthz on a fresh connection, 1 s timeout`);
  console.log('| attack | p50 ms | p99 ms | max ms | p99 / none | failed | credsync RSS MiB | fds |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.attack} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} | `
                + `${(r.p99 / base.p99).toFixed(2)} | ${r.failures} | ${r.rssMiB.toFixed(1)} | ${r.fds} |`);
  }
  const shed = counter('credsync_listener_connections_closed_total{listener="http",reason="shed"}');
  const accepted = counter('credsync_listener_connections_accepted_total{listener="http"}');
  console.log(`connections accepted ${accepted}, shed at the limit ${shed}`);
  console.log(JSON.stringify({ bench: 'probes', probes: PROBES, rows, accepted, shed }));
} finally {
  await sc.stop();
  await emu.stop();
}
