// The loopback local API (docs/local-api.md): how fast an SDK's credentials
// URI request is answered, how many a second one credsync answers, and what
// the listener costs in memory, idle and with many connections open. A
// benchmark, not a test: it prints figures and asserts nothing about time;
// e2e_node_local_api asserts the behaviour.
//
//   bench/run local_api           (bootstraps the emulator's PKI, then runs this)
//   bench/run --smoke local_api   (tiny counts, for CI)
//
// Rows: one kept-alive connection (what an SDK with a connection pool does),
// a new connection per request (what credentials-go's and -java's clients
// do for the URI), 16 concurrent kept-alive clients, and the same under
// 1,000 idle connections held open. Knobs: LOCAL_API_REQUESTS (per row,
// default 5000), LOCAL_API_HELD (idle connections, default 1000).

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import { startEmulator } from '../tests/e2e/node/emulator.mjs';
import {
  IMAGE_ENV, httpGet, setUpRrsaWorld, startSidecar, waitForFile, writeConfig,
} from '../tests/e2e/node/sidecar.mjs';
import { sample } from './lib/proc.mjs';
import { percentile } from './lib/stats.mjs';

const smoke = process.argv.includes('--smoke');
const REQUESTS = Number(process.env.LOCAL_API_REQUESTS || (smoke ? 50 : 5000));
const HELD = Number(process.env.LOCAL_API_HELD || (smoke ? 20 : 1000));
const SECRET = 'acs/ram/user/local-api-bench';

// GETs `target` `count` times through `agent` (kept alive, or a new
// connection each time); latencies in ms, sorted.
async function run(address, target, count, agent) {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const latencies = [];
  let failures = 0;
  for (let i = 0; i < count; i += 1) {
    const started = process.hrtime.bigint();
    const status = await new Promise((resolve) => {
      const request = http.get({ host, port, path: target, agent }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode));
      });
      request.on('error', () => resolve(0));
    });
    if (status !== 200) failures += 1;
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  latencies.sort((a, b) => a - b);
  return { latencies, failures };
}

function row(name, latencies, failures, seconds, pid) {
  const proc = sample(pid);
  return {
    row: name, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1),
    perSecond: latencies.length / seconds, failures, rssMiB: proc.rssKiB / 1024, fds: proc.fds,
  };
}

const emu = await startEmulator({ logLevel: 'warn' });
const world = await setUpRrsaWorld(emu, { name: 'local-api-bench', secrets: [SECRET] });
const pathSecret = crypto.randomBytes(32).toString('hex');
const secretFile = path.join(world.dir, 'path-secret');
fs.writeFileSync(secretFile, `${pathSecret}\n`, { mode: 0o600 });
const configFile = writeConfig(world.dir, {
  kms: { endpoints: [emu.endpoint] },
  tls: { ca_file: emu.caFile },
  profiles: [{ name: 'default', secret_name: SECRET }],
  output: { directory: path.join(world.dir, 'out') },
  local_api: { listen: '127.0.0.1:0', path_secret_file: secretFile },
});
const sc = await startSidecar({ configFile, env: { ...IMAGE_ENV, ...world.env }, name: 'local-api-bench' });
const rows = [];
const held = [];
try {
  const address = await sc.listening('local_api');
  await waitForFile(path.join(world.dir, 'out', 'credentials.ini'));
  const target = `/${pathSecret}/v1/credentials/default`;
  const first = await httpGet(address, target);
  if (first.status !== 200) throw new Error(`the URI answered ${first.status}: ${first.text}`);
  const idle = sample(sc.pid);
  rows.push({ row: 'idle (no request yet answered but one)', rssMiB: idle.rssKiB / 1024, fds: idle.fds });

  const measure = async (name, clients, agentFor) => {
    const started = process.hrtime.bigint();
    const results = await Promise.all(Array.from({ length: clients }, () =>
      run(address, target, Math.ceil(REQUESTS / clients), agentFor())));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
    rows.push(row(name, latencies, results.reduce((n, r) => n + r.failures, 0), seconds, sc.pid));
  };
  const keptAlive = () => new http.Agent({ keepAlive: true, maxSockets: 1 });
  await measure('1 client, kept alive', 1, keptAlive);
  await measure('1 client, a connection per request', 1, () => false);
  await measure('16 clients, kept alive', 16, keptAlive);
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  for (let i = 0; i < HELD; i += 1) {
    held.push(await new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => resolve(socket));
      socket.on('error', reject);
    }));
  }
  await measure(`1 client, kept alive, ${HELD} idle connections open`, 1, keptAlive);

  const { text } = await httpGet(await sc.listening('http'), '/metrics');
  const served = Number((text.split('\n').find((l) =>
    l.startsWith('credsync_local_api_requests_total{api="credentials_uri",code="200"}')) ?? ' NaN').split(' ').at(-1));
  console.log(`local_api: ${REQUESTS} requests per row, GET /<path secret>/v1/credentials/default, client on the same machine`);
  console.log('| row | p50 ms | p99 ms | max ms | requests/s | failed | credsync RSS MiB | fds |');
  console.log('|---|---|---|---|---|---|---|---|');
  const f = (n, digits = 2) => (n === undefined ? '' : n.toFixed(digits));
  for (const r of rows) {
    console.log(`| ${r.row} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.perSecond, 0)} | `
                + `${r.failures ?? ''} | ${r.rssMiB.toFixed(1)} | ${r.fds} |`);
  }
  console.log(`answered 200 in all: ${served}`);
  console.log(JSON.stringify({ bench: 'local_api', requests: REQUESTS, held: HELD, rows, served }));
} finally {
  for (const socket of held) socket.destroy();
  await sc.stop();
  await emu.stop();
}
