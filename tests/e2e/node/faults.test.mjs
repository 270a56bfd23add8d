// Upstream faults end to end (issue 6): the real credsync binary against the
// emulator over TLS, one emulator and one sidecar per fault class, run
// concurrently. For every class, after the first good write:
//   (a) credentials.ini stays byte-identical, and so does the ..data target;
//   (b) liveness stays up (HTTP /healthz 200);
//   (c) readiness and GetStatus tell the truth: /readyz 200 and ready=true
//       (the written key is still served; docs/operations.md: a KMS outage
//       leaves the pod ready), last_error with the class's code or message,
//       consecutive_failures growing, a "fetch failed" warning that says the
//       last good key is served;
//   (d) attempts counted on the emulator over a measured window lie within
//       the bounds of the bounded full-jitter backoff (retryable classes) or
//       of the slow interval (non-retryable ones, which must not retry fast);
//   (e) once the fault clears, a rotation made meanwhile lands in the file
//       within one backoff step (retry_max_backoff, plus the in-flight
//       attempt, plus a margin) — for non-retryable classes within one slow
//       interval.
// The figures of each class are printed as a `FAULT-FIGURES {json}` line
// (docs/reliability.md quotes them).
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_faults).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startEmulator } from './emulator.mjs';
import { startTcpProxy } from './tcp_proxy.mjs';
import { connectControl } from './grpc_client.mjs';
import { httpGet, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig } from './sidecar.mjs';

// The backoff under test: ceilings 200, 400, 800, 800 … ms, each delay drawn
// uniformly below its ceiling and never under the sidecar's 100 ms floor
// (sidecar/sync/sync_engine.cc kMinimumRetryDelay).
const INITIAL_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 800;
const MIN_DELAY_MS = 100;
// Non-retryable failures wait the slow interval, shortened here (jitter 0)
// so that "does not retry fast" and recovery are observable in seconds.
const SLOW_INTERVAL_MS = 3000;
const REQUEST_TIMEOUT_MS = 500;
const WINDOW_MS = 4000;
// What one attempt may take besides its injected latency, on a loaded
// two-core machine running every class at once.
const ATTEMPT_SLACK_MS = 600;
const RECOVERY_MARGIN_MS = 700;

function toMs(timestamp) {
  if (!timestamp) return undefined;
  return Number(timestamp.seconds) * 1000 + Math.floor((timestamp.nanos || 0) / 1e6);
}

// One fault class's world: its own emulator (faults and counters are
// global to an emulator), RRSA identity, secret and sidecar.
async function startCase(name, options) {
  const emu = await startEmulator();
  try {
    return await startCaseOn(emu, name, options);
  } catch (err) {
    await emu.stop();
    throw err;
  }
}

async function startCaseOn(emu, name, { retryable, proxy = false }) {
  const secret = `acs/ram/user/${name}`;
  const world = await setUpRrsaWorld(emu, { name, secrets: [secret] });
  const kmsProxy = proxy ? await startTcpProxy(emu.port) : undefined;
  const out = path.join(world.dir, 'out');
  const configFile = writeConfig(world.dir, {
    identity: { session_duration: '15m' },
    kms: { endpoints: [kmsProxy ? kmsProxy.endpoint : emu.endpoint] },
    tls: { ca_file: emu.caFile },
    http: { connect_timeout: `${REQUEST_TIMEOUT_MS}ms`, request_timeout: `${REQUEST_TIMEOUT_MS}ms` },
    profiles: [{ name: 'default', secret_name: secret }],
    output: { directory: out },
    refresh: {
      // Retryable classes: no scheduled fetch in the test, so every attempt
      // during the fault is a backoff retry. Non-retryable ones: the slow
      // interval is the only schedule they may follow.
      interval: retryable ? '1h' : `${SLOW_INTERVAL_MS}ms`,
      jitter: 0,
      rotation_jitter: '0s',
      retry_initial_backoff: `${INITIAL_BACKOFF_MS}ms`,
      retry_max_backoff: `${MAX_BACKOFF_MS}ms`,
      // The throttling class (Rejected.Throttling) backs off with
      // decorrelated jitter, each delay in [initial, min(cap, 3 x
      // previous)]: with the same cap its delays stay within the bounds
      // above. That it backs off further by default is the unit tests' and
      // bench/fleet's to show.
      throttled_max_backoff: `${MAX_BACKOFF_MS}ms`,
      on_demand_burst: 100,
    },
    log: { level: 'debug' },
  });
  const sc = await startSidecar({ configFile, env: world.env, name });
  const socket = await sc.listening('unix');
  const httpAddress = await sc.listening('http');
  const api = connectControl(`unix:${socket}`);
  const file = path.join(out, 'credentials.ini');
  await waitForFile(file);
  return {
    name, emu, world, sc, api, httpAddress, secret, out, file, kmsProxy,
    async status() {
      return (await api.getStatus()).response;
    },
    async profile() {
      return (await api.getStatus()).response.profiles[0];
    },
    snapshot() {
      return { bytes: fs.readFileSync(file), data: fs.readlinkSync(path.join(out, '..data')) };
    },
    counters: () => emu.admin('GET', '/admin/counters'),
    rotate: () => emu.admin('POST', `/admin/secrets/${encodeURIComponent(secret)}/rotate`, {}),
    // The STS session the sidecar holds now, by its key id (logged; not a secret).
    stsSessionId() {
      const lines = sc.logs().filter((l) => l.msg === 'STS session obtained');
      return lines.length ? lines[lines.length - 1].access_key_id : undefined;
    },
    async stop() {
      api.close();
      const stopped = await sc.stop();
      await kmsProxy?.close();
      await emu.stop();
      return stopped;
    },
  };
}

function counterOf(counters, action, code) {
  const entry = counters.actions?.[action];
  if (!entry) return 0;
  return code === undefined ? entry.requests : (entry.failures?.[code] ?? 0);
}

// The bounds on attempts that can start within a window of `windowMs`,
// given the gaps between consecutive attempts lie in [minGap, maxGap].
function attemptBounds(windowMs, minGap, maxGap) {
  return { min: Math.floor(windowMs / maxGap), max: Math.floor(windowMs / minGap) + 1 };
}

const KMS = 'GetSecretValue';
const STS = 'AssumeRoleWithOIDC';

// The fault classes. inject/clear act on the case's world; `counted` says
// which emulator counter counts the attempts; `error` what GetStatus must
// show. attemptMs: how long one failing attempt takes at most, besides slack.
const CLASSES = [
  {
    name: 'latency', retryable: true,
    description: 'KMS answers after 1.5 s, beyond http.request_timeout 500ms',
    inject: (c) => c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'latency', latency_ms: 1500 }),
    clear: (c) => c.emu.admin('DELETE', '/admin/faults'),
    counted: [KMS], countLagMs: 1500 + 300,
    attemptMs: REQUEST_TIMEOUT_MS, minAttemptMs: REQUEST_TIMEOUT_MS,
    error: { code: 'DEADLINE_EXCEEDED', message: /time|timed out/i },
  },
  {
    name: 'http5xx', retryable: true,
    description: 'KMS answers 503 ServiceUnavailableTemporary',
    inject: (c) => c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'http_5xx', status: 503 }),
    clear: (c) => c.emu.admin('DELETE', '/admin/faults'),
    counted: [KMS, 'ServiceUnavailableTemporary'],
    error: { code: 'UNAVAILABLE', upstream: 'ServiceUnavailableTemporary' },
  },
  {
    name: 'internal', retryable: true,
    description: 'KMS answers 500 InternalFailure',
    inject: (c) => c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'internal_failure' }),
    clear: (c) => c.emu.admin('DELETE', '/admin/faults'),
    counted: [KMS, 'InternalFailure'],
    error: { code: 'UNAVAILABLE', upstream: 'InternalFailure' },
  },
  {
    name: 'throttling', retryable: true,
    description: 'KMS answers 400 Rejected.Throttling',
    inject: (c) => c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'throttling' }),
    clear: (c) => c.emu.admin('DELETE', '/admin/faults'),
    counted: [KMS, 'Rejected.Throttling'],
    error: { code: 'UNAVAILABLE', upstream: 'Rejected.Throttling' },
  },
  {
    name: 'reset', retryable: true,
    description: 'KMS resets the connection without an answer',
    inject: (c) => c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'reset' }),
    clear: (c) => c.emu.admin('DELETE', '/admin/faults'),
    counted: [KMS, 'ConnectionReset'],
    error: { code: 'UNAVAILABLE', message: /reset|recv|send|connection|got nothing|empty/i },
  },
  {
    name: 'malformed', retryable: true,
    description: 'KMS answers 200 with a body that is not JSON',
    inject: (c) => c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'malformed_json' }),
    clear: (c) => c.emu.admin('DELETE', '/admin/faults'),
    counted: [KMS, 'MalformedBody'],
    error: { code: 'UNAVAILABLE', message: /malformed answer/ },
  },
  {
    name: 'truncated', retryable: true,
    description: 'KMS answers 200 with the real body cut in half',
    inject: (c) => c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'truncated_body' }),
    clear: (c) => c.emu.admin('DELETE', '/admin/faults'),
    counted: [KMS, 'TruncatedBody'],
    error: { code: 'UNAVAILABLE', message: /partial|transfer|closed|truncat/i },
  },
  {
    name: 'tlsmismatch', retryable: true, proxy: true,
    description: 'the KMS address now presents a certificate of the test CA for wrong-host.invalid',
    async inject(c) {
      const { port } = await c.emu.admin('POST', '/admin/listeners', { certificate: 'wrong_host' });
      c.kmsProxy.switchTo(port);
    },
    clear: async (c) => c.kmsProxy.switchTo(c.emu.port),
    counted: ['TLSHandshake', 'WrongHostCertificate'],
    error: { code: 'UNAVAILABLE', message: /certificate|SSL|TLS|verif|subject/i },
  },
  {
    name: 'clockskew', retryable: false,
    description: "the emulator's clock runs 20 minutes ahead: signatures fall outside the 15-minute window",
    inject: (c) => c.emu.admin('POST', '/admin/clock', { offset_seconds: 1200 }),
    clear: (c) => c.emu.admin('POST', '/admin/clock', { offset_seconds: 0 }),
    counted: [KMS, 'InvalidTimeStamp.Expired'],
    error: { code: 'INVALID_ARGUMENT', upstream: 'InvalidTimeStamp.Expired' },
  },
  {
    name: 'oidcmissing', retryable: false, needsExchange: true,
    description: 'the projected token file is removed, then KMS refuses the session',
    inject: async (c) => fs.rmSync(c.world.tokenFile),
    clear: (c) => c.emu.admin('POST', '/admin/oidc/tokens', { subject: c.world.subject, file: c.world.tokenFile }),
    // No upstream call is made without a token: the sidecar's own count.
    counted: null,
    error: { code: 'FAILED_PRECONDITION', message: /token file .* does not exist/ },
  },
  {
    name: 'oidcexpired', retryable: false, needsExchange: true,
    description: 'the token file holds an expired token, then KMS refuses the session',
    inject: (c) => c.emu.admin('POST', '/admin/oidc/tokens',
                               { subject: c.world.subject, file: c.world.tokenFile, ttl_seconds: -60 }),
    clear: (c) => c.emu.admin('POST', '/admin/oidc/tokens', { subject: c.world.subject, file: c.world.tokenFile }),
    counted: [STS, 'AuthenticationFail.OIDCToken.Expired'],
    error: { code: 'UNAUTHENTICATED', upstream: 'AuthenticationFail.OIDCToken.Expired' },
  },
  {
    name: 'oidcaudience', retryable: false, needsExchange: true,
    description: 'the token file holds a token for another audience, then KMS refuses the session',
    inject: (c) => c.emu.admin('POST', '/admin/oidc/tokens',
                               { subject: c.world.subject, file: c.world.tokenFile, audience: 'not-sts.example.com' }),
    clear: (c) => c.emu.admin('POST', '/admin/oidc/tokens', { subject: c.world.subject, file: c.world.tokenFile }),
    counted: [STS, 'AuthenticationFail.OIDCToken.AudienceNotMatch'],
    error: { code: 'UNAUTHENTICATED', upstream: 'AuthenticationFail.OIDCToken.AudienceNotMatch' },
  },
];

// Asserts (a), (b) and (c) for a case in fault.
async function assertDegradedButServing(c, before, klass) {
  const after = c.snapshot();
  assert.ok(after.bytes.equals(before.bytes), `${klass.name}: credentials.ini changed during the fault`);
  assert.equal(after.data, before.data, `${klass.name}: ..data was swapped during the fault`);
  assert.equal((await httpGet(c.httpAddress, '/healthz')).status, 200, `${klass.name}: /healthz`);
  assert.equal((await httpGet(c.httpAddress, '/readyz')).status, 200, `${klass.name}: /readyz`);
  const status = await c.status();
  assert.equal(status.ready, true, `${klass.name}: GetStatus ready`);
  const profile = status.profiles[0];
  assert.equal(profile.written, true);
  assert.ok(profile.last_error, `${klass.name}: no last_error in GetStatus`);
  assert.equal(profile.last_error.code, klass.error.code,
               `${klass.name}: last_error ${JSON.stringify(profile.last_error)}`);
  if (klass.error.upstream) {
    assert.equal(profile.last_error.upstream_code, klass.error.upstream,
                 `${klass.name}: last_error ${JSON.stringify(profile.last_error)}`);
  }
  if (klass.error.message) {
    assert.match(profile.last_error.message, klass.error.message,
                 `${klass.name}: last_error ${JSON.stringify(profile.last_error)}`);
  }
  assert.equal(c.sc.alive(), true);
  return profile;
}

async function runClass(klass) {
  const c = await startCase(`flt${klass.name}`, klass);
  const figures = { class: klass.name, description: klass.description, retryable: klass.retryable };
  try {
    const first = await c.profile();
    assert.equal(first.consecutive_failures, 0);
    const firstSuccess = toMs(first.last_success_time);
    assert.ok(firstSuccess, 'no last_success_time after the first write');
    const before = c.snapshot();
    const firstKey = first.access_key_id;

    // Inject the fault; KMS rotates meanwhile (the sidecar cannot see it
    // until the fault clears).
    const sessionBefore = c.stsSessionId();
    await klass.inject(c);
    const rotated = await c.rotate();
    if (klass.needsExchange) {
      // Make KMS refuse the current session, so that the sidecar has to
      // exchange the (now bad) OIDC token again.
      await c.emu.admin('POST', `/admin/access-keys/${encodeURIComponent(sessionBefore)}/revoke`);
    }
    // The app notices its key failed and asks; the answer is an error and
    // the sidecar's own schedule takes over.
    await c.api.refresh({ profile: 'default', failed_access_key_id: firstKey, reason: 'e2e fault' })
      .then(() => assert.fail(`${klass.name}: Refresh succeeded during the fault`), (err) => err);
    await until(async () => (await c.profile()).consecutive_failures >= 1, 'the first failure');
    await assertDegradedButServing(c, before, klass);
    const failedLine = await c.sc.waitForLog((l) => l.msg === 'fetch failed', 'a "fetch failed" line');
    assert.equal(failedLine.serving_last_good_key, true);
    assert.equal(failedLine.retryable, klass.retryable);

    // (d) the measured window: attempts counted on the emulator (shifted by
    // the injected latency, since the emulator counts a request when it
    // answers) and on the sidecar (consecutive_failures).
    const lag = klass.countLagMs ?? 0;
    const count = async () => (klass.counted ? counterOf(await c.counters(), ...klass.counted) : undefined);
    const t0 = Date.now();
    const f0 = (await c.profile()).consecutive_failures;
    const c0 = delay(lag).then(count);
    await delay(WINDOW_MS);
    const f1 = (await c.profile()).consecutive_failures;
    const c1 = delay(lag).then(count);
    const windowMs = Date.now() - t0;
    const emulatorAttempts = klass.counted ? (await c1) - (await c0) : undefined;
    const sidecarAttempts = f1 - f0;
    const attemptMax = (klass.attemptMs ?? 0) + ATTEMPT_SLACK_MS;
    const attemptMin = klass.minAttemptMs ?? 0;
    const bounds = klass.retryable
      ? attemptBounds(windowMs, MIN_DELAY_MS + attemptMin, MAX_BACKOFF_MS + attemptMax)
      : attemptBounds(windowMs, SLOW_INTERVAL_MS + attemptMin, SLOW_INTERVAL_MS + attemptMax);
    Object.assign(figures, { window_ms: windowMs, emulator_attempts: emulatorAttempts,
                             sidecar_attempts: sidecarAttempts, bounds });
    for (const [who, attempts] of [['emulator', emulatorAttempts], ['sidecar', sidecarAttempts]]) {
      if (attempts === undefined) continue;
      assert.ok(attempts >= bounds.min && attempts <= bounds.max,
                `${klass.name}: ${attempts} attempts counted by the ${who} in ${windowMs} ms, ` +
                `outside [${bounds.min}, ${bounds.max}]`);
    }
    await assertDegradedButServing(c, before, klass);

    // (e) the fault clears; the rotation lands within one step.
    await klass.clear(c);
    const cleared = Date.now();
    const recovered = await until(async () => {
      const p = await c.profile();
      return p.consecutive_failures === 0 && toMs(p.last_success_time) > firstSuccess &&
             p.access_key_id === rotated.access_key_id ? p : undefined;
    }, `${klass.name}: recovery`, 15000, 10);
    const recoveryMs = Date.now() - cleared;
    const step = klass.retryable ? MAX_BACKOFF_MS : SLOW_INTERVAL_MS;
    const recoveryBound = step + attemptMax + RECOVERY_MARGIN_MS;
    Object.assign(figures, { recovery_ms: recoveryMs, recovery_bound_ms: recoveryBound });
    assert.ok(recoveryMs <= recoveryBound,
              `${klass.name}: recovered ${recoveryMs} ms after the fault cleared, over ${recoveryBound} ms`);
    assert.ok(toMs(recovered.last_success_time) > firstSuccess);
    await waitForFile(c.file, (text) => text.includes(`access_key_id = ${rotated.access_key_id}\n`), 5000,
                      'hold the rotated key');
    assert.notEqual(fs.readlinkSync(path.join(c.out, '..data')), before.data);
    assert.equal((await httpGet(c.httpAddress, '/readyz')).status, 200);
    await c.sc.waitForLog((l) => l.msg === 'fetch recovered', 'a "fetch recovered" line');
    if (klass.needsExchange) {
      assert.notEqual(c.stsSessionId(), sessionBefore, 'no new STS session after the token was fixed');
    }
    const stopped = await c.stop();
    assert.equal(stopped.code, 0, c.sc.stderr());
    process.stdout.write(`FAULT-FIGURES ${JSON.stringify(figures)}\n`);
  } catch (err) {
    err.message += `\n--- credsync stderr (tail) ---\n${c.sc.stderr().slice(-6000)}`;
    await c.stop().catch(() => {});
    throw err;
  }
}

describe('upstream fault classes', { concurrency: 4 }, () => {
  for (const klass of CLASSES) {
    // Verifies the file, liveness, readiness, GetStatus, backoff and
    // recovery through one fault class (see the top of this file).
    it(`${klass.name}: ${klass.description}`, () => runClass(klass));
  }

  // Verifies the STS session expiring while KMS is down. The emulator's
  // clock is moved, not credsync's: credsync still believes its 15-minute
  // session valid (by its own clock), KMS — once back — refuses it as
  // InvalidSecurityToken.Expired, and credsync must drop it, exchange a new
  // one and deliver the rotation made meanwhile, the file untouched until
  // then. The offset stays under the 15-minute signature window (895 s), so
  // what expires is the session, not credsync's request timestamps.
  it('session expiry while KMS is down', async () => {
    const klass = {
      name: 'sessionexpiry', retryable: true,
      error: { code: 'UNAVAILABLE', upstream: 'ServiceUnavailableTemporary' },
    };
    const c = await startCase('fltsession', klass);
    const figures = { class: klass.name, retryable: true,
                      description: 'KMS down (503) while the STS session expires by the emulator clock' };
    try {
      const first = await c.profile();
      const firstSuccess = toMs(first.last_success_time);
      const expiry = toMs((await c.status()).identity.session_expire_time);
      assert.ok(expiry, 'no session_expire_time');
      const sessionBefore = c.stsSessionId();
      const before = c.snapshot();
      await c.emu.admin('POST', '/admin/faults', { action: KMS, kind: 'http_5xx', status: 503 });
      const rotated = await c.rotate();
      await c.api.refresh({ profile: 'default', failed_access_key_id: first.access_key_id })
        .then(() => assert.fail('Refresh succeeded while KMS is down'), (err) => err);
      await until(async () => (await c.profile()).consecutive_failures >= 1, 'the first failure');
      await assertDegradedButServing(c, before, klass);

      // Move the emulator 895 s ahead once that puts it past the session's
      // expiry (the session was issued at expiry - 900 s).
      const offsetSeconds = 895;
      await until(async () => Date.now() > expiry - offsetSeconds * 1000 + 1500,
                  'the session to be old enough', 20000, 100);
      await c.emu.admin('POST', '/admin/clock', { offset_seconds: offsetSeconds });
      const f0 = (await c.profile()).consecutive_failures;
      const t0 = Date.now();
      await delay(2000);
      const f1 = (await c.profile()).consecutive_failures;
      assert.ok(f1 > f0, 'no retry while KMS is down');
      await assertDegradedButServing(c, before, klass);
      // credsync's own view: the session is still valid (its clock did not move).
      assert.equal(toMs((await c.status()).identity.session_expire_time), expiry);

      await c.emu.admin('DELETE', '/admin/faults');
      const cleared = Date.now();
      await until(async () => {
        const p = await c.profile();
        return p.consecutive_failures === 0 && p.access_key_id === rotated.access_key_id;
      }, 'recovery', 15000, 10);
      const recoveryMs = Date.now() - cleared;
      const recoveryBound = MAX_BACKOFF_MS + ATTEMPT_SLACK_MS + RECOVERY_MARGIN_MS;
      const counters = await c.counters();
      Object.assign(figures, { window_ms: Date.now() - t0, recovery_ms: recoveryMs, recovery_bound_ms: recoveryBound,
                               kms_refused_expired_session: counterOf(counters, KMS, 'InvalidSecurityToken.Expired'),
                               sts_exchanges: counterOf(counters, STS) });
      assert.ok(recoveryMs <= recoveryBound, `recovered ${recoveryMs} ms after KMS came back, over ${recoveryBound} ms`);
      assert.equal(counterOf(counters, KMS, 'InvalidSecurityToken.Expired'), 1, JSON.stringify(counters));
      assert.equal(counterOf(counters, STS, undefined), 2, JSON.stringify(counters));
      assert.notEqual(c.stsSessionId(), sessionBefore);
      const newExpiry = toMs((await c.status()).identity.session_expire_time);
      assert.ok(newExpiry > expiry + 800 * 1000, `session_expire_time ${newExpiry} did not move past ${expiry}`);
      assert.ok(toMs((await c.profile()).last_success_time) > firstSuccess);
      await waitForFile(c.file, (text) => text.includes(`access_key_id = ${rotated.access_key_id}\n`), 5000);
      const stopped = await c.stop();
      assert.equal(stopped.code, 0);
      process.stdout.write(`FAULT-FIGURES ${JSON.stringify(figures)}\n`);
    } catch (err) {
      err.message += `\n--- credsync stderr (tail) ---\n${c.sc.stderr().slice(-6000)}`;
      await c.stop().catch(() => {});
      throw err;
    }
  });
});
