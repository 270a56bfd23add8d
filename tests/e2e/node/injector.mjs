// Test harness for `credsync injector serve`: a test PKI made with the
// openssl CLI, a certificate directory laid out and updated the way the
// kubelet updates a Secret volume, AdmissionReview requests shaped as the
// API server sends them, and an HTTPS client that reports which serving
// certificate answered.
//
//   const pki = makePki(dir);
//   const certs = new SecretVolume(path.join(dir, 'tls'), pki.issue('a'));
//   const injector = await startInjector({ certs });
//   const answer = await postReview(injector.port, pki.ca, admissionReview(pod));
//   const pod2 = applyAnswer(pod, answer);

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';

import jsonpatch from 'fast-json-patch';

import { startCredsync } from './sidecar.mjs';

function openssl(args, cwd) {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`openssl ${args.join(' ')}: exit ${result.status}: ${result.stderr}`);
  }
  return result.stdout;
}

// A CA and serving certificates it signs, for 127.0.0.1 and localhost (the
// names the API server would use are the Service's; any name the client
// checks will do). issue(name) writes NAME.crt and NAME.key and returns
// {cert, key, serial} (PEM text, the serial as openssl prints it).
export function makePki(dir) {
  fs.mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
           '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=credsync-injector-test-ca'], dir);
  fs.writeFileSync(path.join(dir, 'serving.ext'),
                   'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  return {
    ca: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    issue(name) {
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
               '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=injector-${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
               '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '1',
               '-extfile', 'serving.ext', '-out', `${name}.crt`], dir);
      const cert = fs.readFileSync(path.join(dir, `${name}.crt`), 'utf8');
      return { cert, key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8'), serial: new crypto.X509Certificate(cert).serialNumber };
    },
  };
}

// A directory holding tls.crt and tls.key as the kubelet keeps a Secret
// volume: the files are links through `..data` to a timestamped directory,
// and an update writes a new directory and renames a new `..data` link over
// the old one, so a reader sees the old pair or the new one, never a mix.
export class SecretVolume {
  constructor(dir, pair) {
    this.dir = dir;
    this.generation = 0;
    fs.mkdirSync(dir, { recursive: true });
    this.update(pair);
    for (const file of ['tls.crt', 'tls.key']) fs.symlinkSync(path.join('..data', file), path.join(dir, file));
  }

  get certFile() { return path.join(this.dir, 'tls.crt'); }
  get keyFile() { return path.join(this.dir, 'tls.key'); }

  update({ cert, key }) {
    this.generation += 1;
    const version = `..2026_12_06_00_00_00.${this.generation}`;
    fs.mkdirSync(path.join(this.dir, version));
    fs.writeFileSync(path.join(this.dir, version, 'tls.crt'), cert);
    fs.writeFileSync(path.join(this.dir, version, 'tls.key'), key, { mode: 0o600 });
    fs.symlinkSync(version, path.join(this.dir, '..data_tmp'));
    fs.renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
  }
}

export const INJECTION_FLAGS = [
  '--image', 'registry.example.com/credsync/credsync:0.1.0',
  '--kms-region', 'cn-hangzhou',
  '--oidc-provider-arn', 'acs:ram::1234567890123456:oidc-provider/ack-rrsa-c-emulator',
];

// Starts `credsync injector serve` on loopback ports picked by the kernel.
// Resolves the handle of startCredsync with `port` (HTTPS) and `http`
// (the probe and metrics address).
export async function startInjector({ certs, name = 'injector', extraArgs = [], env = {}, launcher = [] }) {
  const handle = await startCredsync(['injector', 'serve', '--listen', '127.0.0.1:0', '--http-address', '127.0.0.1:0',
                                      '--cert-file', certs.certFile, '--key-file', certs.keyFile,
                                      ...INJECTION_FLAGS, ...extraArgs], { env, name, launcher });
  const serving = await handle.waitForLog((l) => l.msg === 'injector serving', 'an "injector serving" log line');
  handle.port = Number(serving.listen.split(':').at(-1));
  handle.http = serving.http_address;
  return handle;
}

// A Deployment's pod as the API server hands it to a webhook at CREATE: no
// name yet (generateName), defaults applied, the opt-in label and
// annotations of `annotations`.
export function appPod(annotations = {}, { label = true } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'orders-7d9c5b8f6-',
      namespace: 'shop',
      labels: { app: 'orders', 'pod-template-hash': '7d9c5b8f6', ...(label ? { 'credsync.io/inject': 'true' } : {}) },
      annotations,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'orders-7d9c5b8f6', uid: crypto.randomUUID(), controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      containers: [{
        name: 'orders',
        image: 'registry.example.com/shop/orders:2.3.1',
        ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }],
        resources: { requests: { cpu: '100m', memory: '128Mi' } },
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent',
      }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'orders',
      securityContext: {},
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
    },
  };
}

export const OPTED_IN = {
  'credsync.io/secret-default': 'acs/ram/user/orders',
  'credsync.io/role-arn': 'acs:ram::1234567890123456:role/orders-kms-reader',
};

// The AdmissionReview the API server POSTs for `object` (admission.k8s.io/v1).
export function admissionReview(object, { operation = 'CREATE', dryRun = false, kind, resource } = {}) {
  const podKind = { group: '', version: 'v1', kind: 'Pod' };
  const podResource = { group: '', version: 'v1', resource: 'pods' };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: crypto.randomUUID(),
      kind: kind ?? podKind,
      resource: resource ?? podResource,
      requestKind: kind ?? podKind,
      requestResource: resource ?? podResource,
      namespace: object?.metadata?.namespace ?? 'shop',
      operation,
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: crypto.randomUUID(), groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

// POST /mutate as the API server does. `body`: an object (sent as JSON), a
// string or a Buffer. Resolves {status, text, json, serial (of the serving
// certificate), ms}.
export function postReview(port, ca, body, { agent = false, path: requestPath = '/mutate', method = 'POST', headers = {}, timeoutMs = 10000 } = {}) {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, method, path: requestPath, ca, agent, servername: 'localhost', timeout: timeoutMs,
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    }, (res) => {
      const serial = res.socket.getPeerX509Certificate?.()?.serialNumber;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json, serial, ms: Number(process.hrtime.bigint() - started) / 1e6 });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${requestPath}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// The JSON Patch of an AdmissionReview answer (an empty list when it has none).
export function patchOf(answer) {
  const { response } = answer.json;
  if (!response.patch) return [];
  assertEqual(response.patchType, 'JSONPatch', 'patchType');
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
}

// `pod` with the answer's patch applied by fast-json-patch, an RFC 6902
// implementation independent of credsync's (validate: every operation is
// checked against the document before it is applied).
export function applyAnswer(pod, answer) {
  return jsonpatch.applyPatch(structuredClone(pod), patchOf(answer), /*validateOperation=*/true).newDocument;
}

function assertEqual(actual, expected, what) {
  if (actual !== expected) throw new Error(`${what}: ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
}

// One sample of a counter or gauge from Prometheus text: the line whose
// series starts with `series` (name and, optionally, part of its labels).
export function metricValue(text, series) {
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

// `connections` TLS clients that each announce a `bytes` body and send it
// `chunk` bytes every `intervalMs` (a hostile client holding the injector's
// buffers). Resolves {statuses (one per connection: the HTTP status, or
// 'closed'), done (a promise of them all), stop()}.
export async function startSlowSenders(port, ca, { connections, bytes, chunk = 64 * 1024, intervalMs = 100 }) {
  const statuses = new Array(connections).fill(undefined);
  const sockets = [];
  const finished = [];
  for (let i = 0; i < connections; i += 1) {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    sockets.push(socket);
    finished.push(new Promise((resolve) => {
      let received = '';
      let timer;
      const settle = (status) => {
        clearInterval(timer);
        if (statuses[i] === undefined) statuses[i] = status;
        socket.destroy();
        resolve();
      };
      socket.on('error', () => settle('closed'));
      socket.on('close', () => settle('closed'));
      socket.on('data', (data) => {
        received += data.toString('latin1');
        const match = received.match(/^HTTP\/1\.1 (\d{3})/);
        if (match) settle(Number(match[1]));
      });
      socket.once('secureConnect', () => {
        socket.write(`POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${bytes}\r\n\r\n{"a":"`);
        let sent = 6;
        timer = setInterval(() => {
          const size = Math.min(chunk, bytes - sent - 2);
          if (size <= 0) {
            socket.write('"}');
            clearInterval(timer);
            return;
          }
          socket.write('x'.repeat(size));
          sent += size;
        }, intervalMs);
      });
    }));
  }
  return {
    statuses,
    done: Promise.all(finished),
    stop() { for (const socket of sockets) socket.destroy(); return Promise.all(finished); },
  };
}
