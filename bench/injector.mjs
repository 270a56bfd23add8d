// The admission webhook's latency and footprint: `credsync injector serve`
// answering AdmissionReviews over HTTPS as the API server sends them. A
// benchmark, not a test: it prints figures and asserts nothing about time
// (e2e_node_injector checks the behaviour).
//
//   bench/run injector            (N reviews a row, default 2000)
//   bench/run --smoke injector    (tiny counts, for CI)
//
// Rows:
//   kept-alive     one client, one connection reused (the API server keeps
//                  its connections to a webhook open)
//   new connection one client, a TLS handshake for every review
//   16 concurrent  16 clients, kept-alive connections, back to back
//   large pod      kept-alive, a pod of 12 containers with 40 variables each
// RSS is sampled idle, after each row, and its high-water mark at the end.
// Knob: INJECTOR_REVIEWS (reviews per row).
//
// INJECTOR_LARGE=1 adds the memory worst cases (after the rows above, so
// their RSS figures are unchanged), each reported with the RSS after it:
//   4 x 4 MiB      4 clients at once, each a valid review just under the
//                  4 MiB body limit (a pod with one huge annotation value),
//                  INJECTOR_LARGE_REVIEWS each (default 10)
//   hostile JSON   4 clients at once, each a review whose pod carries
//                  2^18 - 1000 "k":0 members (the costliest shape the
//                  injector still parses, ~3 MiB)
//   slow senders   40 connections each announcing a 4 MiB body and sending
//                  it 128 KiB a 100 ms (the body budget admits four)

import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

import {
  OPTED_IN, SecretVolume, admissionReview, appPod, makePki, postReview, startInjector, startSlowSenders,
} from '../tests/e2e/node/injector.mjs';
import { sample } from './lib/proc.mjs';
import { percentile } from './lib/stats.mjs';

const smoke = process.argv.includes('--smoke');
const REVIEWS = Number(process.env.INJECTOR_REVIEWS || (smoke ? 20 : 2000));
const LARGE = process.env.INJECTOR_LARGE === '1';
const LARGE_REVIEWS = Number(process.env.INJECTOR_LARGE_REVIEWS || (smoke ? 2 : 10));
const MAX_BODY = 4 * 1024 * 1024;


function largePod() {
  const pod = appPod(OPTED_IN);
  const template = pod.spec.containers[0];
  pod.spec.containers = Array.from({ length: 12 }, (_, i) => ({
    ...template,
    name: `worker-${i}`,
    env: Array.from({ length: 40 }, (__, j) => ({ name: `SETTING_${j}`, value: `value-${i}-${j}-${'x'.repeat(40)}` })),
    volumeMounts: [{ name: 'data', mountPath: `/data/${i}` }],
  }));
  pod.spec.volumes = [{ name: 'data', emptyDir: {} }];
  return pod;
}

// A valid review of `bytes` at most: an opted-in pod with one annotation
// that fills it.
function hugeAnnotationReview(bytes) {
  const pod = appPod({ ...OPTED_IN, 'example.com/blob': '' });
  const review = admissionReview(pod);
  pod.metadata.annotations['example.com/blob'] = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(review)));
  return JSON.stringify(review);
}

// A review whose pod has `members` "kN":0 members in one annotation-like
// object (the parsed document's costliest shape per node).
function wideReview(members) {
  const review = JSON.stringify(admissionReview(appPod(OPTED_IN)));
  const wide = Array.from({ length: members }, (_, i) => `"k${i}":0`).join(',');
  return review.replace('"metadata":{', `"metadata":{"x":{${wide}},`);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-bench-injector-'));
const pki = makePki(path.join(dir, 'pki'));
const certs = new SecretVolume(path.join(dir, 'tls'), pki.issue('serving'));
const injector = await startInjector({ certs, name: 'bench-injector' });

async function row(name, { pod, body: text, clients = 1, keepAlive = true, reviews = REVIEWS, wantStatus = 200 }) {
  const agents = Array.from({ length: clients }, () => (keepAlive ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : false));
  const body = text ?? JSON.stringify(admissionReview(pod));
  const latencies = [];
  let failures = 0;
  let firstError;
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(agents.map(async (agent) => {
    while (next < reviews) {
      next += 1;
      try {
        const answer = await postReview(injector.port, pki.ca, body, { agent, timeoutMs: 30000 });
        if (answer.status !== wantStatus || (wantStatus === 200 && answer.json?.response?.allowed !== true)) failures += 1;
        latencies.push(answer.ms);
      } catch (err) {
        failures += 1;
        firstError ??= String(err);
      }
    }
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const agent of agents) if (agent) agent.destroy();
  latencies.sort((a, b) => a - b);
  if (firstError) console.error(`${name}: ${firstError}`);
  if (latencies.length === 0) latencies.push(NaN);
  const proc = sample(injector.pid);
  return {
    name, reviews: latencies.length, bodyKiB: Buffer.byteLength(body) / 1024,
    p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1),
    perSecond: latencies.length / seconds, failures, rssMiB: proc.rssKiB / 1024, threads: proc.threads,
  };
}

try {
  const idle = sample(injector.pid);
  const rows = [
    await row('kept-alive', { pod: appPod(OPTED_IN) }),
    await row('new connection', { pod: appPod(OPTED_IN), keepAlive: false }),
    await row('16 concurrent', { pod: appPod(OPTED_IN), clients: 16 }),
    await row('large pod', { pod: largePod() }),
  ];
  if (LARGE) {
    rows.push(await row('4 x 4 MiB', { body: hugeAnnotationReview(MAX_BODY - 1024), clients: 4, reviews: 4 * LARGE_REVIEWS }));
    rows.push(await row('hostile JSON', { body: wideReview((1 << 18) - 1000), clients: 4, reviews: 4 * LARGE_REVIEWS }));
    const senders = await startSlowSenders(injector.port, pki.ca, { connections: 40, bytes: MAX_BODY, chunk: 128 * 1024 });
    let peakKiB = 0;
    const watch = setInterval(() => { peakKiB = Math.max(peakKiB, sample(injector.pid).rssKiB); }, 50);
    await senders.done;
    clearInterval(watch);
    // Each new head closes the sender that reserved longest ago.
    const shed = senders.statuses.filter((s) => s === 'closed').length;
    console.log(`slow senders: 40 connections x 4 MiB, ${shed} closed for the body budget, `
                + `${senders.statuses.filter((s) => s === 400).length} read and answered; RSS peak ${(peakKiB / 1024).toFixed(1)} MiB`);
    if (shed === 0) process.exitCode = 1;
  }
  const end = sample(injector.pid);
  console.log(`injector: ${REVIEWS} AdmissionReviews a row over HTTPS (TLS 1.3, P-256), client on the same machine`);
  console.log('| row | body KiB | p50 ms | p99 ms | max ms | reviews/s | failed | RSS MiB after |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.bodyKiB.toFixed(1)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} | `
                + `${r.perSecond.toFixed(0)} | ${r.failures} | ${r.rssMiB.toFixed(1)} |`);
  }
  console.log(`RSS idle ${(idle.rssKiB / 1024).toFixed(1)} MiB, high-water mark ${(end.hwmKiB / 1024).toFixed(1)} MiB, `
              + `threads ${end.threads}`);
  console.log(JSON.stringify({ bench: 'injector', reviews: REVIEWS, idleRssMiB: idle.rssKiB / 1024, hwmMiB: end.hwmKiB / 1024, rows }));
  if (rows.some((r) => r.failures > 0)) process.exitCode = 1;
} finally {
  await injector.stop();
}
