// Test harness for credsync-emulator (tests/emulator/README.md is its contract).
//
//   const emu = await startEmulator();         // fresh state dir, port 0
//   emu.endpoint                               // '127.0.0.1:PORT' (tea/darabonba SDKs)
//   emu.url                                    // 'https://127.0.0.1:PORT' (pop-core)
//   await emu.admin('POST', '/admin/access-keys', {secrets: ['*']})
//   await emu.stop();                          // SIGTERM, then removes the state dir
//
// The binary comes from $CREDSYNC_EMULATOR. Its stderr (JSON log lines) goes
// to a file, emu.stderrFile, kept in $CREDSYNC_E2E_LOG_DIR when that is set
// (tests/e2e/node/run.sh sets it to the ctest build dir), so a failing test
// can show it: emu.stderrTail().
//
// With CREDSYNC_RECORD_SECRETS=1 every emulator also appends each secret it
// issues to $CREDSYNC_E2E_LOG_DIR/emulator-secrets-<pid>.txt
// (--record-secrets; used by tests/e2e/hygiene).
//
// Node reads NODE_EXTRA_CA_CERTS once at startup, so the CA the official SDKs
// trust must exist before the test process starts. run.sh therefore runs
// `node emulator.mjs bootstrap-pki DIR` first (one emulator start generates
// the PKI in DIR) and exports NODE_EXTRA_CA_CERTS=DIR/ca.pem and
// CREDSYNC_EMULATOR_PKI_DIR=DIR; startEmulator() copies that PKI into each
// fresh state dir, and the emulator reuses the PKI it finds there.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const STARTUP_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 5000;

// Every emulator this process started and has not stopped yet, so that a
// crashing test run does not leave one behind.
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

function emulatorBinary(explicit) {
  const binary = explicit || process.env.CREDSYNC_EMULATOR;
  if (!binary) {
    throw new Error('CREDSYNC_EMULATOR is not set: it must name the credsync-emulator binary ' +
                    '(ctest passes $<TARGET_FILE:credsync-emulator> through tests/e2e/node/run.sh)');
  }
  if (!fs.existsSync(binary)) {
    throw new Error(`CREDSYNC_EMULATOR=${binary} does not exist; build the credsync-emulator target`);
  }
  return binary;
}

function tail(file, maxBytes = 16384) {
  try {
    const data = fs.readFileSync(file);
    return data.subarray(Math.max(0, data.length - maxBytes)).toString('utf8');
  } catch (err) {
    return `(cannot read ${file}: ${err.message})`;
  }
}

function copyPki(fromDir, toDir) {
  // The README names every file of the PKI *.pem (ca.pem, server.pem,
  // server-key.pem, issuer-key.pem); copy them all, whatever else is there.
  for (const name of fs.readdirSync(fromDir)) {
    const source = path.join(fromDir, name);
    if (name.endsWith('.pem') && fs.statSync(source).isFile()) {
      fs.copyFileSync(source, path.join(toDir, name));
      fs.chmodSync(path.join(toDir, name), 0o600);
    }
  }
}

// An HTTPS request to the emulator that trusts only its CA. Resolves
// {status, headers, text, json} (json is undefined when the body is not JSON).
export function httpsRequest({ port, ca, method, path: requestPath, headers = {}, body }) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined
        : (typeof body === 'string' || Buffer.isBuffer(body)) ? body : JSON.stringify(body);
    const allHeaders = { ...headers };
    if (payload !== undefined) {
      if (!Object.keys(allHeaders).some((h) => h.toLowerCase() === 'content-type')) {
        allHeaders['content-type'] = 'application/json';
      }
      allHeaders['content-length'] = Buffer.byteLength(payload);
    }
    const req = https.request({
      host: '127.0.0.1',
      port,
      method,
      path: requestPath,
      headers: allHeaders,
      ca,
      agent: false,
      timeout: 15000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = text.length ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${requestPath}: timed out`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

// Starts the emulator on port 0 in a fresh temporary state dir.
// options: {binary, seed (object, written to a file), logLevel, pkiDir, keepStateDir,
//           kmsInstances (ids: one KMS instance gateway each, emu.kmsInstance(id))}
export async function startEmulator(options = {}) {
  const binary = emulatorBinary(options.binary);
  const stateDir = options.stateDir || fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-emu-'));
  const pkiDir = options.pkiDir === undefined ? process.env.CREDSYNC_EMULATOR_PKI_DIR : options.pkiDir;
  if (pkiDir) copyPki(pkiDir, stateDir);

  const logDir = process.env.CREDSYNC_E2E_LOG_DIR || stateDir;
  fs.mkdirSync(logDir, { recursive: true });
  const stderrFile = path.join(logDir,
      `emulator-${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e6)}.stderr.log`);
  const portFile = path.join(stateDir, 'port');

  const args = ['--state-dir', stateDir, '--port-file', portFile,
                '--log-level', options.logLevel || 'debug'];
  // The secret-hygiene test (tests/e2e/hygiene) asks every emulator to list
  // the secrets it issues, so that it can look for them in credsync's logs.
  if (process.env.CREDSYNC_RECORD_SECRETS === '1') {
    args.push('--record-secrets', path.join(logDir, `emulator-secrets-${process.pid}.txt`));
  }
  for (const id of options.kmsInstances || []) args.push('--kms-instance', id);
  if (options.seed) {
    const seedFile = path.join(stateDir, 'seed.json');
    fs.writeFileSync(seedFile, JSON.stringify(options.seed, null, 2));
    args.push('--seed', seedFile);
  }

  const stderrFd = fs.openSync(stderrFile, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', stderrFd, stderrFd] });
  fs.closeSync(stderrFd);
  running.add(child);

  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      resolve(exited);
    });
  });
  child.on('error', (err) => {
    exited = { code: null, signal: null, error: err };
    running.delete(child);
  });

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let port;
  for (;;) {
    if (exited) {
      throw new Error(`credsync-emulator exited during startup (${JSON.stringify(exited)}); ` +
                      `stderr:\n${tail(stderrFile)}`);
    }
    try {
      const text = fs.readFileSync(portFile, 'utf8').trim();
      if (/^\d+$/.test(text) && Number(text) > 0) {
        port = Number(text);
        break;
      }
    } catch {
      // Not written yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`credsync-emulator wrote no port file within ${STARTUP_TIMEOUT_MS} ms; ` +
                      `stderr:\n${tail(stderrFile)}`);
    }
    await delay(20);
  }

  const caFile = path.join(stateDir, 'ca.pem');
  if (!fs.existsSync(caFile)) {
    child.kill('SIGKILL');
    throw new Error(`credsync-emulator is up but ${caFile} does not exist; stderr:\n${tail(stderrFile)}`);
  }
  const ca = fs.readFileSync(caFile);

  const emu = {
    port,
    endpoint: `127.0.0.1:${port}`,
    url: `https://127.0.0.1:${port}`,
    caFile,
    ca,
    stateDir,
    stderrFile,
    pid: child.pid,

    // The emulator's stderr so far (its last 16 KiB).
    stderrTail: (maxBytes) => tail(stderrFile, maxBytes),

    // An admin call answered with 2xx: resolves the parsed JSON answer.
    // Any other status rejects with the status and the body.
    async admin(method, adminPath, body) {
      const res = await httpsRequest({ port, ca, method, path: adminPath, body });
      if (res.status < 200 || res.status >= 300) {
        const err = new Error(`admin ${method} ${adminPath} answered ${res.status}: ${res.text}`);
        err.status = res.status;
        err.body = res.json ?? res.text;
        throw err;
      }
      return res.json ?? {};
    },

    // Any HTTPS request to the emulator: {status, headers, text, json}.
    request: (method, requestPath, { headers, body } = {}) =>
      httpsRequest({ port, ca, method, path: requestPath, headers, body }),

    // A KMS instance gateway (--kms-instance): {id, port, endpoint (its
    // real host name, for SNI and the host header), caFile, ca (the
    // instance CA, not the test CA)}. The emulator writes the port file
    // before its main one.
    kmsInstance(id) {
      const instancePort = Number(
          fs.readFileSync(path.join(stateDir, `kms-instance-${id}.port`), 'utf8').trim());
      const instanceCaFile = path.join(stateDir, 'kms-instance-ca.pem');
      return {
        id,
        port: instancePort,
        endpoint: `${id}.cryptoservice.kms.aliyuncs.com`,
        caFile: instanceCaFile,
        ca: fs.readFileSync(instanceCaFile),
      };
    },

    // Whether the process is still running.
    alive: () => exited === null,

    // SIGTERM, wait (SIGKILL after 5 s), remove the state dir. Resolves the
    // exit {code, signal}.
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exitPromise;
        clearTimeout(timer);
      }
      if (!options.keepStateDir && !options.stateDir) {
        // The log survives only when it lives outside the state dir.
        fs.rmSync(stateDir, { recursive: true, force: true });
      }
      return exited;
    },
  };
  return emu;
}

// `node emulator.mjs bootstrap-pki DIR`: starts the emulator once with DIR as
// its state dir, so that it generates its PKI there, and stops it. Prints
// the CA file's path.
async function main(argv) {
  if (argv[0] !== 'bootstrap-pki' || argv.length !== 2) {
    process.stderr.write('usage: node emulator.mjs bootstrap-pki DIR\n');
    process.exit(2);
  }
  const dir = path.resolve(argv[1]);
  fs.mkdirSync(dir, { recursive: true });
  const emu = await startEmulator({ stateDir: dir, pkiDir: null, logLevel: 'warn' });
  const health = await emu.admin('GET', '/admin/health');
  await emu.stop();
  fs.rmSync(path.join(dir, 'port'), { force: true });
  if (!health || health.ok !== true) {
    throw new Error(`GET /admin/health answered ${JSON.stringify(health)}, want {"ok": true}`);
  }
  process.stdout.write(`${emu.caFile}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`${err.stack || err}\n`);
    process.exit(1);
  });
}
