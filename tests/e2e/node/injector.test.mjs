// `credsync injector serve`, the real binary over HTTPS (issue 18, "the
// injector's own e2e"): AdmissionReview requests shaped as the API server
// sends them, answered with patches an independent JSON Patch library
// applies; probes and metrics; the serving certificate rotated the way the
// kubelet updates a Secret volume while requests keep flowing, none failing;
// and hostile clients, refused quickly without harming the server.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startAttacker } from './attacker.mjs';
import {
  OPTED_IN, SecretVolume, admissionReview, appPod, applyAnswer, makePki, metricValue, patchOf, postReview,
  startInjector, startSlowSenders,
} from './injector.mjs';
import { httpGet, until } from './sidecar.mjs';

// Under AddressSanitizer (the ASan tree runs this file too) the shadow
// memory and the quarantine of freed buffers make RSS meaningless as a
// bound; the release tree's run holds the injector to it.
const ASAN_BUILD = fs.readFileSync(process.env.CREDSYNC_BIN).includes('__asan_init');
const MAX_PEAK_KIB = ASAN_BUILD ? Infinity : 100 * 1024;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-injector-'));
const pki = makePki(path.join(dir, 'pki'));
const first = pki.issue('first');
const certs = new SecretVolume(path.join(dir, 'tls'), first);
let injector;

before(async () => {
  injector = await startInjector({ certs, extraArgs: ['--cert-check-interval', '100ms'] });
});
after(async () => {
  const stopped = await injector?.stop();
  assert.equal(stopped?.code, 0, `injector exit: ${JSON.stringify(stopped)}\n${injector?.stderr()}`);
});

const review = (body, options) => postReview(injector.port, pki.ca, body, options);

describe('admission', () => {
  it('injects credsync into an opted-in pod, with a patch fast-json-patch applies', async () => {
    const pod = appPod(OPTED_IN);
    const request = admissionReview(pod);
    const answer = await review(request);
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.headers['content-type'], /^application\/json/);
    const { response } = answer.json;
    assert.equal(answer.json.apiVersion, 'admission.k8s.io/v1');
    assert.equal(answer.json.kind, 'AdmissionReview');
    assert.equal(response.uid, request.request.uid);
    assert.equal(response.allowed, true);
    const patched = applyAnswer(pod, answer);
    const sidecar = patched.spec.initContainers[0];
    assert.equal(sidecar.name, 'credsync');
    assert.equal(sidecar.restartPolicy, 'Always', 'native sidecar by default');
    assert.equal(sidecar.image, 'registry.example.com/credsync/credsync:0.1.0');
    const app = patched.spec.containers[0];
    assert.equal(app.name, 'orders');
    assert.deepEqual(app.env, [{ name: 'ALIBABA_CLOUD_CREDENTIALS_FILE', value: '/var/run/credsync/credentials.ini' }]);
    assert.ok(app.volumeMounts.some((m) => m.mountPath === '/var/run/credsync' && m.readOnly));
    assert.equal(patched.metadata.annotations['credsync.io/status'], 'injected');
    // What the app had is still there, untouched.
    assert.deepEqual({ ...app, env: undefined, volumeMounts: undefined },
                     { ...pod.spec.containers[0], env: undefined, volumeMounts: undefined });

    // Reinvocation: the patched pod comes back and is left alone.
    const again = await review(admissionReview(patched));
    assert.equal(again.json.response.allowed, true);
    assert.deepEqual(patchOf(again), []);
  });

  it('answers a dry run exactly as the real request', async () => {
    const pod = appPod(OPTED_IN);
    const real = await review(admissionReview(pod));
    const dry = await review(admissionReview(pod, { dryRun: true }));
    assert.equal(dry.json.response.allowed, true);
    assert.deepEqual(patchOf(dry), patchOf(real));
  });

  it('leaves pods that did not opt in, and operations other than CREATE, unchanged', async () => {
    for (const request of [admissionReview(appPod({}, { label: false })),
                           admissionReview(appPod(OPTED_IN), { operation: 'UPDATE' })]) {
      const answer = await review(request);
      assert.equal(answer.status, 200);
      assert.equal(answer.json.response.uid, request.request.uid);
      assert.equal(answer.json.response.allowed, true);
      assert.equal(answer.json.response.patch, undefined);
    }
  });

  it('denies a bad annotation with one line naming it', async () => {
    const answer = await review(admissionReview(appPod({ ...OPTED_IN, 'credsync.io/mode': 'sideways' })));
    assert.equal(answer.status, 200);
    const { response } = answer.json;
    assert.equal(response.allowed, false);
    assert.equal(response.status.code, 400);
    assert.match(response.status.message, /^credsync\.io\/mode: /);
    assert.doesNotMatch(response.status.message, /\n/);
    assert.equal(response.patch, undefined);
  });

  it('refuses an object that is not a pod', async () => {
    const deployment = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'orders', namespace: 'shop' }, spec: {} };
    const answer = await review(admissionReview(deployment, {
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
    }));
    assert.equal(answer.json.response.allowed, false);
    assert.match(answer.json.response.status.message, /pod/i);
  });

  it('serves many reviews over one kept-alive connection', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    let connections = 0;
    const connect = agent.createConnection.bind(agent);
    agent.createConnection = (...args) => { connections += 1; return connect(...args); };
    try {
      for (let i = 0; i < 50; i += 1) {
        const request = admissionReview(appPod(OPTED_IN));
        const answer = await review(request, { agent });
        assert.equal(answer.status, 200);
        assert.equal(answer.json.response.uid, request.request.uid);
      }
      assert.equal(connections, 1, 'one connection served them all');
    } finally {
      agent.destroy();
    }
  });
});

describe('probes and metrics', () => {
  it('is live and ready, and counts admissions by result', async () => {
    assert.equal((await httpGet(injector.http, '/healthz')).status, 200);
    assert.equal((await httpGet(injector.http, '/readyz')).status, 200);
    await review(admissionReview(appPod({ ...OPTED_IN, 'credsync.io/mode': 'sideways' })));
    const { status, text } = await httpGet(injector.http, '/metrics');
    assert.equal(status, 200);
    assert.ok(metricValue(text, 'credsync_injector_admissions_total{') !== undefined, text);
    assert.match(text, /credsync_injector_admissions_total\{[^}]*result="injected"[^}]*\} [1-9]/);
    assert.match(text, /credsync_injector_admissions_total\{[^}]*result="denied"[^}]*\} [1-9]/);
    assert.match(text, /credsync_injector_admission_duration_seconds_bucket/);
    assert.match(text, /credsync_injector_certificate_not_after_timestamp_seconds/);
  });
});

describe('certificate rotation', () => {
  it('serves a renewed certificate with no failed request, and keeps the old one when the new pair is bad', async () => {
    let failures = 0;
    let served = 0;
    const serials = new Set();
    let running = true;
    // Fresh connections, back to back, each a full handshake: the swap
    // happens under load, as a renewal in a busy cluster would.
    const load = (async () => {
      while (running) {
        try {
          const answer = await review(admissionReview(appPod(OPTED_IN)));
          if (answer.status !== 200 || answer.json?.response?.allowed !== true) failures += 1;
          serials.add(answer.serial);
          served += 1;
        } catch {
          failures += 1;
        }
      }
    })();
    try {
      await until(() => served > 20, 'requests before the rotation');
      const second = pki.issue('second');
      certs.update(second);
      await until(() => serials.has(second.serial), `the renewed certificate ${second.serial} served`, 10000);

      // A pair whose key does not match its certificate: logged, counted,
      // and the certificate in use keeps serving.
      const rejectedBefore = metricValue((await httpGet(injector.http, '/metrics')).text,
                                         'credsync_injector_certificate_reloads_total{result="rejected"}') ?? 0;
      const third = pki.issue('third');
      certs.update({ cert: third.cert, key: first.key });
      await until(async () => (metricValue((await httpGet(injector.http, '/metrics')).text,
                                           'credsync_injector_certificate_reloads_total{result="rejected"}') ?? 0) > rejectedBefore,
                  'the mismatched pair rejected', 10000);
      const still = await review(admissionReview(appPod(OPTED_IN)));
      assert.equal(still.serial, second.serial);

      // Fixed by the next renewal.
      const fourth = pki.issue('fourth');
      certs.update(fourth);
      await until(() => serials.has(fourth.serial), 'the next renewal served', 10000);
    } finally {
      running = false;
      await load;
    }
    assert.equal(failures, 0, `${failures} of ${served} requests failed during the rotations`);
    assert.equal((await httpGet(injector.http, '/readyz')).status, 200);
  });
});

// The injector's resident memory now, KiB (Linux).
const rssKiB = () => Number(fs.readFileSync(`/proc/${injector.pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m)[1]);

// Resolves when `socket` closes; rejects after `ms`.
function closedWithin(socket, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`${what}: still open after ${ms} ms`)); }, ms);
    socket.on('close', () => { clearTimeout(timer); resolve(); });
    socket.on('error', () => {});
  });
}

describe('hostile clients', () => {
  it('refuses an oversized body from its Content-Length, before it is sent', async () => {
    const answer = await new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: injector.port, method: 'POST', path: '/mutate', ca: pki.ca, servername: 'localhost', agent: false,
        headers: { 'content-type': 'application/json', 'content-length': 64 * 1024 * 1024 },
      }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
      req.on('error', (err) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve('reset') : reject(err)));
      req.write('{"apiVersion":');
    });
    assert.equal(answer, 413);
  });

  it('answers malformed and deeply nested bodies 400, and wrong paths and methods 404 and 405', async () => {
    assert.equal((await review('{"apiVersion": "admission.k8s.io/v1", "kind": ')).status, 400);
    assert.equal((await review('[]')).status, 400);
    assert.equal((await review('['.repeat(100000) + ']'.repeat(100000))).status, 400);
    assert.equal((await review({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' })).status, 400);
    assert.equal((await review(admissionReview(appPod(OPTED_IN)), { path: '/other' })).status, 404);
    assert.equal((await review('', { method: 'GET' })).status, 405);
  });

  it('closes a plain-HTTP client, and a TLS client that never sends its request', async () => {
    const plain = net.connect(injector.port, '127.0.0.1');
    plain.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
    await closedWithin(plain, 5000, 'plain HTTP on the TLS port');

    const silent = tls.connect({ host: '127.0.0.1', port: injector.port, ca: pki.ca, servername: 'localhost' });
    await new Promise((resolve, reject) => { silent.once('secureConnect', resolve); silent.once('error', reject); });
    silent.write('POST /mutate HTTP/1.1\r\nHost: x\r\n');  // half a head, then nothing
    await closedWithin(silent, 20000, 'a TLS client stalled mid-request');
  });

  it('holds bounded memory while 40 connections each send a 4 MiB body slowly', async () => {
    const metricsText = async () => (await httpGet(injector.http, '/metrics')).text;
    const rejectedBefore = metricValue(await metricsText(), 'credsync_injector_requests_rejected_total{reason="memory"}') ?? 0;
    const shedBefore = metricValue(await metricsText(), 'credsync_injector_connections_closed_total{reason="body_budget"}') ?? 0;
    // 40 x 4 MiB would be 160 MiB buffered; the budget (16 MiB) takes four,
    // and each new head closes the sender that reserved longest ago.
    const senders = await startSlowSenders(injector.port, pki.ca, { connections: 40, bytes: 4 * 1024 * 1024, chunk: 128 * 1024 });
    let peakKiB = 0;
    const watch = setInterval(() => { peakKiB = Math.max(peakKiB, rssKiB()); }, 50);
    try {
      await until(() => senders.statuses.filter((s) => s === 'closed').length >= 30, 'the oldest senders closed for the budget', 10000);
      // The survivors hold the whole budget, still sending: a review the API
      // server sends whole is served at once, the oldest survivor closed for it.
      const request = admissionReview(appPod(OPTED_IN));
      const during = await review(request, { timeoutMs: 5000 });
      assert.equal(during.status, 200, during.text);
      assert.equal(during.json.response.uid, request.request.uid);
      await senders.done;  // the survivors finish their bodies (answered 400: not a review)
    } finally {
      clearInterval(watch);
      await senders.stop();
    }
    peakKiB = Math.max(peakKiB, rssKiB());
    assert.ok(peakKiB < MAX_PEAK_KIB, `injector RSS peaked at ${(peakKiB / 1024).toFixed(1)} MiB`);
    const answered = senders.statuses.filter((s) => s === 400).length;
    assert.ok(answered >= 1 && answered <= 4, `statuses: ${JSON.stringify(senders.statuses)}`);
    assert.ok(!senders.statuses.includes(503), `statuses: ${JSON.stringify(senders.statuses)}`);
    const after = await metricsText();
    const shed = metricValue(after, 'credsync_injector_connections_closed_total{reason="body_budget"}') - shedBefore;
    assert.ok(shed >= 31, `closed for the body budget: ${shed}`);
    assert.equal(metricValue(after, 'credsync_injector_requests_rejected_total{reason="memory"}') ?? 0, rejectedBefore);
    // The budget is free again: a review is served.
    const request = admissionReview(appPod(OPTED_IN));
    const answer = await review(request);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.response.uid, request.request.uid);
  });

  it('keeps answering while 500 idle connections and a connect storm hit the port', async () => {
    const address = `127.0.0.1:${injector.port}`;
    for (const [mode, count] of [['idle', 500], ['storm', 16]]) {
      const attacker = await startAttacker(mode, address, count);
      try {
        for (let i = 0; i < 10; i += 1) {
          const request = admissionReview(appPod(OPTED_IN));
          const answer = await review(request, { timeoutMs: 5000 });
          assert.equal(answer.status, 200, `${mode}: ${answer.text}`);
          assert.equal(answer.json.response.uid, request.request.uid);
        }
      } finally {
        await attacker.stop();
      }
    }
    assert.equal((await httpGet(injector.http, '/healthz')).status, 200);
    await delay(10);
  });
});
