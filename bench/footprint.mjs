// Footprint benchmark: the sidecar's resident memory, threads, open file
// descriptors and CPU time, read from /proc, at four points of a realistic
// load, and a Kubernetes resources block derived from them. A benchmark, not
// a test: it prints figures and asserts nothing about time or size.
//
//   bench/run footprint            (bootstraps the emulator's PKI, then runs this)
//   bench/run --smoke footprint    (tiny counts, for CI)
//
// The points: idle after the first write; after N concurrent Refresh calls
// over the Unix socket (default 200, all naming the key KMS has just
// rotated, so one fetch and the rest coalesced or answered from memory); with
// W Watch streams open, each on its own connection (default 50); after R
// rotations each picked up by a Refresh and fanned out to the W watchers
// (default 100); and idle again once the watchers have gone.
//
// Needs CREDSYNC_BIN and CREDSYNC_EMULATOR (bench/run sets them) and `npm ci`.
// Knobs: FOOTPRINT_REFRESH_CALLS, FOOTPRINT_WATCHES, FOOTPRINT_ROTATIONS,
// FOOTPRINT_IDLE_SECONDS (the idle CPU window, default 10).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { startEmulator } from '../tests/e2e/node/emulator.mjs';
import { sample } from './lib/proc.mjs';
import { deadlineIn, grpc, loadProtos } from '../tests/e2e/node/grpc_client.mjs';
import { IMAGE_ENV, setUpRrsaWorld, startSidecar, waitForFile, writeConfig } from '../tests/e2e/node/sidecar.mjs';

const smoke = process.argv.includes('--smoke');
const count = (name, normal, small) => Number(process.env[name] || (smoke ? small : normal));
const REFRESH_CALLS = count('FOOTPRINT_REFRESH_CALLS', 200, 10);
const WATCHES = count('FOOTPRINT_WATCHES', 50, 5);
const ROTATIONS = count('FOOTPRINT_ROTATIONS', 100, 5);
const IDLE_SECONDS = count('FOOTPRINT_IDLE_SECONDS', 10, 1);
const SECRET = 'acs/ram/user/footprint-app';

// --- figures ----------------------------------------------------------------

const mib = (kib) => kib / 1024;

// --- gRPC ---------------------------------------------------------------------

// A control API client on its own connection: grpc-js shares one connection
// between clients with identical options unless told otherwise, and an app
// container holds its own.
function ownClient(socket) {
  const protos = loadProtos();
  return new protos.credsync.v1.CredsyncService(`unix:${socket}`, grpc.credentials.createInsecure(), {
    'grpc.enable_http_proxy': 0,
    'grpc.use_local_subchannel_pool': 1,
  });
}

function refresh(client, request, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    client.Refresh(request, new grpc.Metadata(), { deadline: deadlineIn(timeoutMs) },
                   (err, response) => (err ? reject(err) : resolve(response)));
  });
}

function getStatus(client) {
  return new Promise((resolve, reject) => {
    client.GetStatus({}, new grpc.Metadata(), { deadline: deadlineIn(10000) },
                     (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// Opens a Watch on `client`; counts messages; `first` resolves on the first.
function openWatch(client) {
  const call = client.Watch({ profile: 'default' }, new grpc.Metadata());
  const watch = { call, received: 0 };
  watch.first = new Promise((resolve, reject) => {
    call.on('data', () => {
      watch.received += 1;
      if (watch.received === 1) resolve();
    });
    call.on('error', (err) => {
      if (err.code !== grpc.status.CANCELLED) reject(err);
    });
  });
  return watch;
}

async function waitUntil(predicate, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

// --- the resources block -----------------------------------------------------

const ceilTo = (value, step) => Math.ceil(value / step) * step;
const nextPowerOfTwo = (value) => 2 ** Math.ceil(Math.log2(Math.max(1, value)));

function resources(idle, peakHwmKiB, idleCpuCores) {
  const memoryRequestMi = ceilTo(mib(idle.rssKiB) * 1.25, 4);
  const memoryLimitMi = nextPowerOfTwo(4 * mib(peakHwmKiB));
  // CPU requests below 10m are not worth expressing; idle CPU is near zero.
  const cpuRequestM = Math.max(10, ceilTo(idleCpuCores * 1000 * 2, 5));
  return { memoryRequestMi, memoryLimitMi, cpuRequestM };
}

// --- main ---------------------------------------------------------------------

async function main() {
  const emu = await startEmulator({ logLevel: 'warn' });
  let sidecar;
  let world;
  let outDir;
  const clients = [];
  try {
    world = await setUpRrsaWorld(emu, { name: 'footprint', secrets: [SECRET] });
    // The output on tmpfs, as in a pod (emptyDir, medium Memory).
    const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    outDir = fs.mkdtempSync(path.join(shm, 'credsync-footprint-'));
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: SECRET }],
      output: { directory: outDir },
      // No scheduled fetch during the run; every rotation comes through a
      // Refresh, and the bucket allows them all.
      refresh: { interval: '1h', jitter: 0, rotation_jitter: '0s', on_demand_burst: 1000, on_demand_refill: '1s' },
      log: { level: 'info' },
    });
    const started = process.hrtime.bigint();
    sidecar = await startSidecar({ configFile, env: { ...world.env, ...IMAGE_ENV }, name: 'footprint' });
    const socket = await sidecar.listening('unix');
    await waitForFile(path.join(outDir, 'credentials.ini'));
    const readyMs = Number(process.hrtime.bigint() - started) / 1e6;
    const pid = sidecar.pid;
    const rows = [];
    const record = (name, s, note = '') => rows.push({ name, ...s, note });

    // 1. Idle after the first write: settle, then measure CPU over a window.
    await delay(1000);
    const idleStart = sample(pid);
    await delay(IDLE_SECONDS * 1000);
    const idle = sample(pid);
    const idleCpuCores = (idle.cpu - idleStart.cpu) / (Number(idle.at - idleStart.at) / 1e9);
    record('idle after first write', idle, `${(idleCpuCores * 1000).toFixed(1)} mCPU over ${IDLE_SECONDS} s`);

    // 2. N concurrent Refresh calls naming the key KMS just rotated away,
    // GetSecretValue held 200 ms so the calls overlap.
    const api = ownClient(socket);
    clients.push(api);
    const old = (await getStatus(api)).profiles[0].access_key_id;
    await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
    await emu.admin('POST', '/admin/faults', { action: 'GetSecretValue', kind: 'latency', latency_ms: 200, count: 1 });
    const refreshStart = process.hrtime.bigint();
    const answers = await Promise.allSettled(Array.from({ length: REFRESH_CALLS }, (_, i) =>
      refresh(api, { profile: 'default', failed_access_key_id: old, reason: `footprint ${i}` })));
    const refreshMs = Number(process.hrtime.bigint() - refreshStart) / 1e6;
    await emu.admin('DELETE', '/admin/faults');
    const failed = answers.filter((a) => a.status === 'rejected');
    if (failed.length) throw new Error(`${failed.length} Refresh calls failed: ${failed[0].reason.message}`);
    const outcomes = {};
    for (const { value } of answers) {
      const key = value.coalesced ? 'coalesced' : value.outcome.replace('OUTCOME_', '').toLowerCase();
      outcomes[key] = (outcomes[key] || 0) + 1;
    }
    record(`after ${REFRESH_CALLS} concurrent Refresh`, sample(pid),
           `${Object.entries(outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}; ${refreshMs.toFixed(0)} ms`);

    // 3. W Watch streams, each on its own connection.
    const watches = [];
    for (let i = 0; i < WATCHES; i++) {
      const client = ownClient(socket);
      clients.push(client);
      watches.push(openWatch(client));
    }
    await Promise.all(watches.map((w) => w.first));
    await delay(500);
    record(`${WATCHES} Watch streams open`, sample(pid), `${WATCHES} connections`);

    // 4. R rotations, each picked up by a Refresh and sent to every watcher.
    const rotationStart = process.hrtime.bigint();
    let current = (await getStatus(api)).profiles[0].access_key_id;
    for (let i = 0; i < ROTATIONS; i++) {
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
      const answer = await refresh(api, { profile: 'default', failed_access_key_id: current, reason: 'footprint rotation' });
      if (answer.access_key_id !== rotated.access_key_id) {
        throw new Error(`rotation ${i}: Refresh answered ${answer.access_key_id}, KMS has ${rotated.access_key_id}`);
      }
      current = answer.access_key_id;
    }
    await waitUntil(() => watches.every((w) => w.received >= 1 + ROTATIONS), 'every watcher to see every rotation');
    const rotationMs = Number(process.hrtime.bigint() - rotationStart) / 1e6;
    record(`after ${ROTATIONS} rotations`, sample(pid),
           `${ROTATIONS} writes, ${ROTATIONS * WATCHES} Watch messages; ${rotationMs.toFixed(0)} ms`);

    // 5. The watchers leave; idle again.
    for (const w of watches) w.call.cancel();
    for (const client of clients.splice(1)) client.close();
    await delay(2000);
    record('idle, watchers gone', sample(pid));

    const counters = await emu.admin('GET', '/admin/counters');
    const upstream = counters.actions?.GetSecretValue?.requests;

    // --- report ---
    const peakHwm = Math.max(...rows.map((r) => r.hwmKiB));
    const table = [
      ['point', 'RSS MiB', 'HWM MiB', 'threads', 'fds', 'CPU s', 'note'],
      ...rows.map((r) => [r.name, mib(r.rssKiB).toFixed(1), mib(r.hwmKiB).toFixed(1), String(r.threads),
                         String(r.fds), r.cpu.toFixed(2), r.note]),
    ];
    const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
    const line = (row) => row.map((cell, c) => (c === 0 || c === row.length - 1 ? cell.padEnd(widths[c])
                                                                               : cell.padStart(widths[c])))
      .join('  ').trimEnd();
    console.log(`footprint: credsync ${process.env.CREDSYNC_BIN}`);
    console.log(`  ${os.cpus().length} CPUs (${os.cpus()[0]?.model?.trim()}), Linux ${os.release()}, node ${process.version}` +
                `${smoke ? ', SMOKE counts' : ''}`);
    console.log(`  start to credentials.ini: ${readyMs.toFixed(0)} ms; GetSecretValue calls in all: ${upstream}`);
    console.log();
    for (const row of table) console.log(`  ${line(row)}`);
    console.log();

    const r = resources(idle, peakHwm, idleCpuCores);
    console.log('Suggested resources (requests ~ idle figures rounded up; memory limit ~ 4x peak HWM, a power of two):');
    console.log();
    console.log('  resources:');
    console.log('    requests:');
    console.log(`      cpu: ${r.cpuRequestM}m`);
    console.log(`      memory: ${r.memoryRequestMi}Mi`);
    console.log('    limits:');
    console.log(`      memory: ${r.memoryLimitMi}Mi`);
    console.log('      # no CPU limit: a throttled sidecar answers Refresh late; the request reserves enough');
  } finally {
    for (const client of clients) client.close();
    if (sidecar) await sidecar.stop();
    await emu.stop();
    for (const dir of [outDir, world?.dir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`footprint failed: ${err.stack || err}`);
  process.exit(1);
});
