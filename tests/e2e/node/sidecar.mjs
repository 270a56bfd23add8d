// Test harness for the credsync binary ($CREDSYNC_BIN): writes a config,
// runs `credsync run` or any other command with a controlled environment,
// keeps its stderr (JSON log lines) and, for commands run to completion, its
// stdout in $CREDSYNC_E2E_LOG_DIR, and waits for what the sidecar writes.
//
// CREDSYNC_E2E_LOG_LEVEL=debug (the secret-hygiene test, tests/e2e/hygiene)
// adds `--log-level debug` to every command that takes it (run, sync,
// validate), overriding the configs' own log.level.
//
//   const world = await setUpRrsaWorld(emu, {secrets: ['acs/ram/user/app']});
//   const sc = await startSidecar({config, env: world.env});
//   await sc.waitForFile();  ...  await sc.stop();

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const ACCOUNT = '1234567890123456';
export const ISSUER = 'https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c-emulator';

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// The environment the image gives every credsync process (the `ENV` lines
// of deploy/Dockerfile), for runs that should measure what ships (bench/).
export const IMAGE_ENV = Object.fromEntries(
  [...fs.readFileSync(new URL('../../../deploy/Dockerfile', import.meta.url), 'utf8')
    .matchAll(/^ENV ([A-Za-z_][A-Za-z0-9_]*)=(\S+)$/gm)].map((m) => [m[1], m[2]]));

export function sidecarBinary() {
  const binary = process.env.CREDSYNC_BIN;
  if (!binary || !fs.existsSync(binary)) {
    throw new Error(`CREDSYNC_BIN=${binary} does not name the credsync binary (ctest sets it)`);
  }
  return binary;
}

function logFile(name) {
  const dir = process.env.CREDSYNC_E2E_LOG_DIR || os.tmpdir();
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, `credsync-${name}-${process.pid}-${Date.now()}.stderr.log`);
}

// `args` with `--log-level $CREDSYNC_E2E_LOG_LEVEL` after the command, when
// that is set and the command takes the flag (and does not set it already).
const COMMANDS_WITH_LOG_LEVEL = new Set(['run', 'sync', 'validate']);
export function withLogLevel(args) {
  const level = process.env.CREDSYNC_E2E_LOG_LEVEL;
  if (!level || !COMMANDS_WITH_LOG_LEVEL.has(args[0]) || args.includes('--log-level')) return args;
  return [args[0], '--log-level', level, ...args.slice(1)];
}

// A fresh RRSA world on the emulator: an OIDC provider, a role trusted by
// one service account and allowed to read `secrets`, the secrets themselves,
// and a projected token file. Returns what the pod would be given.
export async function setUpRrsaWorld(emu, { name, secrets, readable = secrets, secretOptions = {} }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `credsync-${name}-`));
  const providerArn = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-${name}`;
  const roleArn = `acs:ram::${ACCOUNT}:role/${name}`;
  const subject = `system:serviceaccount:default:${name}`;
  await emu.admin('POST', '/admin/oidc-providers', { arn: providerArn, issuer: ISSUER });
  await emu.admin('POST', '/admin/roles', {
    arn: roleArn, oidc_provider_arn: providerArn, subjects: [subject], secrets: readable,
  });
  const created = {};
  for (const secret of secrets) {
    created[secret] = await emu.admin('POST', '/admin/secrets', { name: secret, ...secretOptions });
  }
  const tokenFile = path.join(dir, 'token');
  await emu.admin('POST', '/admin/oidc/tokens', { subject, file: tokenFile });
  return {
    dir, providerArn, roleArn, subject, tokenFile, secrets: created,
    env: {
      ALIBABA_CLOUD_ROLE_ARN: roleArn,
      ALIBABA_CLOUD_OIDC_PROVIDER_ARN: providerArn,
      ALIBABA_CLOUD_OIDC_TOKEN_FILE: tokenFile,
      ALIBABA_CLOUD_STS_ENDPOINT: emu.endpoint,
      POD_NAME: `${name}-pod`,
    },
  };
}

// The sidecar's environment: only what is given, plus PATH, so the test
// runner's own variables (ALIBABA_CLOUD_* of a developer) never leak in.
function childEnv(env) {
  return { PATH: process.env.PATH, ...env };
}

// Writes `config` as JSON into `dir`. Adds control.http_address
// 127.0.0.1:0 when the config sets none: credsync's default, 0.0.0.0:9808,
// would bind every interface and collide between concurrent suites.
export function writeConfig(dir, config) {
  if (config.control?.http_address === undefined) {
    config = { ...config, control: { ...config.control, http_address: '127.0.0.1:0' } };
  }
  const file = path.join(dir, `config-${Date.now()}-${Math.floor(Math.random() * 1e6)}.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

// Runs a credsync command to completion: {code, signal, stderr, stdout}.
export async function runCredsync(args, { env = {}, timeoutMs = 60000, name = 'cmd' } = {}) {
  const stderrFile = logFile(name);
  const stderrFd = fs.openSync(stderrFile, 'a');
  const child = spawn(sidecarBinary(), withLogLevel(args),
                      { env: childEnv(env), stdio: ['ignore', 'pipe', stderrFd] });
  fs.closeSync(stderrFd);
  running.add(child);
  let stdout = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await new Promise((resolve) => {
    child.on('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  clearTimeout(timer);
  running.delete(child);
  const stdoutFile = stderrFile.replace(/\.stderr\.log$/, '.stdout.log');
  fs.writeFileSync(stdoutFile, stdout);
  return { code, signal, stdout, stderr: fs.readFileSync(stderrFile, 'utf8'), stderrFile, stdoutFile };
}

// The JSON lines of a log. A line is complete once its newline is written:
// a log read while credsync writes may end in part of a line, which is left
// for the next read (a start that removes thousands of crash leftovers logs
// fast enough to be caught mid-line).
export function parseLogLines(text) {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
}

// Starts `credsync run --config FILE`.
// `launcher`: a command that execs the rest, e.g. ['prlimit', '--nofile=600:600', '--'].
export async function startSidecar({ configFile, env = {}, name = 'run', extraArgs = [], launcher = [] }) {
  return startCredsync(['run', '--config', configFile, ...extraArgs], { env, name, launcher });
}

// Starts a long-running credsync command (`run`, `injector serve`) and
// returns its handle: its logs, the addresses it listens on, stop().
export async function startCredsync(args, { env = {}, name = 'run', launcher = [] } = {}) {
  const stderrFile = logFile(name);
  const stderrFd = fs.openSync(stderrFile, 'a');
  // Neither command prints on stdout; kept anyway for the hygiene scan.
  const stdoutFd = fs.openSync(stderrFile.replace(/\.stderr\.log$/, '.stdout.log'), 'a');
  const command = [...launcher, sidecarBinary(), ...withLogLevel(args)];
  const child = spawn(command[0], command.slice(1), { env: childEnv(env), stdio: ['ignore', stdoutFd, stderrFd] });
  fs.closeSync(stderrFd);
  fs.closeSync(stdoutFd);
  running.add(child);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      running.delete(child);
      resolve(exited);
    });
  });
  const stderr = () => fs.readFileSync(stderrFile, 'utf8');
  return {
    pid: child.pid,
    stderrFile,
    stderr,
    logs: () => parseLogLines(stderr()),
    alive: () => exited === null,
    // Waits until `predicate(logs)` holds, or fails with the log.
    async waitForLog(predicate, what, timeoutMs = 30000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const logs = parseLogLines(stderr());
        const found = logs.find(predicate);
        if (found) return found;
        if (exited) throw new Error(`credsync exited (${JSON.stringify(exited)}) before ${what}:\n${stderr()}`);
        if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${stderr()}`);
        await delay(25);
      }
    },
    // The address of a control listener credsync logged at start:
    // transport 'unix' (the socket path), 'tcp' ('127.0.0.1:PORT') or
    // 'http' (the probe and metrics port, '127.0.0.1:PORT'), 'local_api'
    // (the loopback local API, '127.0.0.1:PORT').
    async listening(transport, timeoutMs = 30000) {
      const single = { http: 'http listening', local_api: 'local api listening' }[transport];
      const line = single
        ? await this.waitForLog((l) => l.msg === single, `a "${single}" log line`, timeoutMs)
        : await this.waitForLog((l) => l.msg === 'control listening' && l.transport === transport,
                                `a "control listening" log line for ${transport}`, timeoutMs);
      return line.address;
    },
    async stop(signal = 'SIGTERM') {
      const started = Date.now();
      if (exited === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exitPromise;
        clearTimeout(timer);
      }
      return { ...exited, ms: Date.now() - started };
    },
  };
}

// Waits until `file` exists and `predicate(content)` holds.
export async function waitForFile(file, predicate = () => true, timeoutMs = 30000, describe = '') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const content = fs.readFileSync(file, 'utf8');
      if (predicate(content)) return content;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${file} did not ${describe || 'appear'} within ${timeoutMs} ms`);
    }
    await delay(25);
  }
}

// GET http://ADDRESS/PATH (credsync's probe and metrics port): {status,
// headers, text}. A fresh connection each time, so a probe never rides on
// a connection an earlier one left open.
export function httpGet(address, requestPath, { timeoutMs = 10000 } = {}) {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: Number(port), path: requestPath, agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${requestPath}: timed out`)));
    req.on('error', reject);
  });
}

// Polls `probe` until it returns a truthy value, which it returns; fails
// after `timeoutMs` naming `what`.
export async function until(probe, what, timeoutMs = 15000, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}

