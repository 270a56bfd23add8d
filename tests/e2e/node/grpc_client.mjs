// gRPC clients of credsync's control API for the e2e suites: @grpc/grpc-js
// with stubs loaded by @grpc/proto-loader from proto/ alone.
//
//   const api = connectControl(`unix:${socketPath}`);          // or '127.0.0.1:PORT', {token}
//   const {response} = await api.refresh({profile: 'default', failed_access_key_id: id});
//   const w = api.watch({profile: 'default'}); await w.next(); ...; w.cancel();
//   await api.check('');                                        // grpc.health.v1
//   api.close();
//
// Messages use the proto's field names (keepCase), uint64 as strings, enums
// as their names ('OUTCOME_REFRESHED'), Timestamps as {seconds, nanos}.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

export { grpc };

export const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'proto');

let loaded;

// The loaded packages: {credsync: {v1: {CredsyncService, ...}}, grpc: {health: {v1: {Health}}}}.
export function loadProtos() {
  if (!loaded) {
    const definition = protoLoader.loadSync(
      ['credsync/v1/credsync.proto', 'grpc/health/v1/health.proto'],
      { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
    );
    loaded = grpc.loadPackageDefinition(definition);
  }
  return loaded;
}

// A deadline `ms` from now.
export function deadlineIn(ms) {
  return new Date(Date.now() + ms);
}

// A control API client for `target` ('unix:/path/credsync.sock' or
// 'HOST:PORT'). options.token: sent as `credsync-token` metadata on every call;
// options.channelOptions: more grpc-js channel options.
export function connectControl(target, { token, channelOptions: extraOptions = {} } = {}) {
  const protos = loadProtos();
  // Never through an http_proxy/grpc_proxy from the environment: the
  // sidecar is on loopback or a Unix socket.
  const channelOptions = { 'grpc.enable_http_proxy': 0, ...extraOptions };
  const service = new protos.credsync.v1.CredsyncService(target, grpc.credentials.createInsecure(), channelOptions);
  const health = new protos.grpc.health.v1.Health(target, grpc.credentials.createInsecure(), channelOptions);

  const metadataFor = (extra) => {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('credsync-token', token);
    for (const [k, v] of Object.entries(extra || {})) md.set(k, v);
    return md;
  };

  // A unary call: resolves {response, trailers}; rejects with the grpc-js
  // error (err.code, err.details, err.metadata: the trailing metadata).
  const unary = (client, method, request, { timeoutMs = 30000, metadata } = {}) =>
    new Promise((resolve, reject) => {
      let trailers;
      const call = client[method](request, metadataFor(metadata), { deadline: deadlineIn(timeoutMs) },
        (err, response) => {
          if (err) reject(err);
          else resolve({ response, trailers });
        });
      call.on('status', (status) => { trailers = status.metadata; });
    });

  return {
    service,
    health,
    refresh: (request, options) => unary(service, 'Refresh', request, options),
    getStatus: (options) => unary(service, 'GetStatus', {}, options),
    // Resolves the health status name ('SERVING', 'NOT_SERVING', ...).
    check: async (serviceName = '', options) =>
      (await unary(health, 'Check', { service: serviceName }, options)).response.status,
    watch: (request = {}, options = {}) => openWatch(service, request, metadataFor(options.metadata)),
    close() {
      service.close();
      health.close();
    },
  };
}

// A Watch stream as a queue: next(timeoutMs) resolves the next message or
// rejects when none comes in time; `ended` resolves the stream's final
// status {code, details} (code 1 = CANCELLED).
function openWatch(service, request, metadata) {
  const call = service.Watch(request, metadata);
  const messages = [];
  const waiters = [];
  let finalStatus = null;
  let resolveEnded;
  const ended = new Promise((resolve) => { resolveEnded = resolve; });
  const wake = () => {
    while (waiters.length && (messages.length || finalStatus)) {
      const waiter = waiters.shift();
      if (messages.length) waiter.resolve(messages.shift());
      else waiter.reject(new Error(`Watch ended (${finalStatus.code} ${finalStatus.details}) with no message`));
    }
  };
  call.on('data', (message) => { messages.push(message); wake(); });
  // grpc-js emits 'error' for a non-OK status; 'status' carries it either way.
  call.on('error', () => {});
  call.on('status', (status) => {
    finalStatus = { code: status.code, details: status.details };
    resolveEnded(finalStatus);
    wake();
  });
  return {
    call,
    ended,
    received: () => messages.length,
    next(timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no Watch message within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = {
          resolve: (m) => { clearTimeout(timer); resolve(m); },
          reject: (e) => { clearTimeout(timer); reject(e); },
        };
        waiters.push(waiter);
        wake();
      });
    },
    cancel: () => call.cancel(),
  };
}

// The gRPC status code numbers by name (grpc.status.CANCELLED, ...).
export const status = grpc.status;
