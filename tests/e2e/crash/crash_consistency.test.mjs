// Crash consistency end to end (issue 6): the real credsync binary against
// the emulator, while an independent reader (credsync-crash-reader, C++)
// opens, reads and closes credentials.ini by its path in a tight loop, as an
// SDK does, and judges every read: never missing, empty, torn, mixed (a
// secret with another key's id), or back to an older key.
//
//   Phase 1, rotations: one long-running sidecar; the emulator's admin API
//   rotates the secret and a gRPC Refresh naming the old key id makes the
//   sidecar fetch and publish it, back to back, CREDSYNC_CRASH_ROTATIONS
//   times (default 10000).
//   Phase 2, kills: CREDSYNC_CRASH_KILLS times (default 200) a sidecar is
//   started, rotations are driven through it as in phase 1, and it is
//   killed with SIGKILL: in turn at a uniformly random instant after its
//   start, 0-300 µs after a publish created its new data directory
//   (credsync-crash-killer, inotify: inside the publish), or 0-6 ms after a
//   Refresh went out (a fetch in flight). Half of the time the key is also
//   rotated while credsync is down, so the next start publishes at once.
//   The next start is checked: the output directory holds only
//   credentials.ini, ..data, the current timestamped directory, the socket,
//   and directories superseded since that start; every leftover of the
//   killed run (interrupted publishes, `..data_tmp`, superseded directories)
//   is gone.
//
// Rotations written are the generations credsync reports (Refresh answers,
// ..data/.generation, which counts across restarts). The reader knows every
// AccessKey pair: the driver appends each pair the emulator's rotate answer
// names to a file the reader loads. The figures go to stdout as one
// "crash-consistency summary:" line and, as JSON, to
// $CREDSYNC_E2E_LOG_DIR/crash_consistency_summary.json.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_crash_consistency), which
// sets the emulator's CA; ctest sets CREDSYNC_BIN, CREDSYNC_CRASH_READER and
// CREDSYNC_CRASH_KILLER. CREDSYNC_CRASH_SCRATCH picks where the output
// directory goes (default /dev/shm, tmpfs as in a pod, else $TMPDIR).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startEmulator } from '../node/emulator.mjs';
import { connectControl } from '../node/grpc_client.mjs';
import { setUpRrsaWorld, startSidecar, writeConfig } from '../node/sidecar.mjs';

const ROTATIONS = Number(process.env.CREDSYNC_CRASH_ROTATIONS ?? 10000);
const KILLS = Number(process.env.CREDSYNC_CRASH_KILLS ?? 200);
// A uniformly random kill lands within this long after the start.
const KILL_WINDOW_MS = Number(process.env.CREDSYNC_CRASH_KILL_WINDOW_MS ?? 400);
const SECRET = 'acs/ram/user/crash-app';
const SOCKET = 'credsync.sock';
const TIMESTAMP_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$/;

const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (err) {
      process.stderr.write(`cleanup: ${err.message}\n`);
    }
  }
});

// The output directory lives on tmpfs when there is one, as in a pod
// (emptyDir medium: Memory): an fsync there costs what it costs in production.
function scratchDir() {
  for (const base of [process.env.CREDSYNC_CRASH_SCRATCH, '/dev/shm', os.tmpdir()]) {
    if (!base) continue;
    try {
      return fs.mkdtempSync(path.join(base, 'credsync-crash-'));
    } catch {
      // Not there or not writable: try the next.
    }
  }
  throw new Error('no writable scratch directory');
}

function randomInt(below) {
  return Math.floor(Math.random() * below);
}

// What the output directory holds: names, the `..data` target, and the
// generation of each timestamped directory (null: none readable yet).
function snapshot(out) {
  const names = fs.readdirSync(out);
  let target = null;
  try {
    target = fs.readlinkSync(path.join(out, '..data'));
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  const generations = {};
  for (const name of names) {
    if (!TIMESTAMP_DIR.test(name)) continue;
    try {
      const text = fs.readFileSync(path.join(out, name, '.generation'), 'utf8');
      generations[name] = /^\d+\n$/.test(text) ? Number(text) : null;
    } catch {
      generations[name] = null;
    }
  }
  return { names, target, generation: target ? generations[target] : null, generations };
}

test('credentials.ini stays whole through rotations and SIGKILLs', { timeout: 890000 }, async () => {
  const started = Date.now();
  const readerBinary = process.env.CREDSYNC_CRASH_READER;
  assert.ok(readerBinary && fs.existsSync(readerBinary),
            `CREDSYNC_CRASH_READER=${readerBinary} must name credsync-crash-reader (ctest sets it)`);
  const killerBinary = process.env.CREDSYNC_CRASH_KILLER;
  assert.ok(killerBinary && fs.existsSync(killerBinary),
            `CREDSYNC_CRASH_KILLER=${killerBinary} must name credsync-crash-killer (ctest sets it)`);

  const emu = await startEmulator({ logLevel: 'warn' });
  cleanups.push(() => emu.stop());
  const world = await setUpRrsaWorld(emu, { name: 'crash', secrets: [SECRET] });
  cleanups.push(() => fs.rmSync(world.dir, { recursive: true, force: true }));
  const scratch = scratchDir();
  cleanups.push(() => fs.rmSync(scratch, { recursive: true, force: true }));
  const out = path.join(scratch, 'out');
  const file = path.join(out, 'credentials.ini');
  const configFile = writeConfig(world.dir, {
    kms: { endpoints: [emu.endpoint] },
    tls: { ca_file: emu.caFile },
    profiles: [{ name: 'default', secret_name: SECRET }],
    output: { directory: out },
    refresh: {
      interval: '1h', jitter: 0, rotation_jitter: '0s',
      retry_initial_backoff: '20ms', retry_max_backoff: '100ms',
      // Refresh is what drives the rotations here: no rate limit in the way.
      on_demand_burst: 1000, on_demand_refill: '1ms',
    },
    control: { http_address: '127.0.0.1:0' },
    log: { level: 'info' },
  });

  // Every pair the test knows, for the reader.
  const pairsFile = path.join(scratch, 'pairs.txt');
  const pairsFd = fs.openSync(pairsFile, 'a');
  cleanups.push(() => fs.closeSync(pairsFd));
  const know = (id, secret) => fs.writeSync(pairsFd, `${id} ${secret}\n`);
  const initial = world.secrets[SECRET];
  know(initial.access_key_id, initial.access_key_secret);
  let currentId = initial.access_key_id;

  // Admin calls on one kept-alive connection, unless the emulator makes a
  // kept-alive call stall (about 40 ms when it does not set TCP_NODELAY: its
  // answer waits for the client's delayed ACK); then a fresh connection per
  // call (a handshake, about 3 ms) is faster.
  let agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: emu.ca });
  cleanups.push(() => agent && agent.destroy());
  {
    const timings = [];
    for (let i = 0; i < 5; i += 1) {
      const t = performance.now();
      await new Promise((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: emu.port, path: '/admin/health', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        }).on('error', reject);
      });
      timings.push(performance.now() - t);
    }
    timings.sort((a, b) => a - b);
    if (timings[2] > 20) agent = false;
  }
  const rotatePath = `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`;
  let rotations = 0;
  const rotate = () => new Promise((resolve, reject) => {
    const body = JSON.stringify({ revoke_previous: rotations % 2 === 0 });
    const req = https.request({
      host: '127.0.0.1', port: emu.port, method: 'POST', path: rotatePath, agent, ca: emu.ca,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`rotate answered ${res.statusCode}: ${text}`));
          return;
        }
        const answer = JSON.parse(text);
        // Written down before anything can ask the sidecar for it.
        know(answer.access_key_id, answer.access_key_secret);
        rotations += 1;
        currentId = answer.access_key_id;
        resolve(answer);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });

  const sidecars = [];
  cleanups.push(async () => { for (const sc of sidecars) if (sc.alive()) await sc.stop('SIGKILL'); });
  const start = async (name) => {
    const sc = await startSidecar({ configFile, env: world.env, name });
    sidecars.push(sc);
    return sc;
  };

  // Waits until `sc` serves and has fetched the newest key: then its start
  // (cleanup and first publish) is over.
  // Every control client is closed at the end even when the test fails
  // midway: an open gRPC channel would keep node (and ctest) waiting.
  const apis = [];
  cleanups.push(() => {
    for (const client of apis) {
      try {
        client.close();
      } catch {
        // Closed already.
      }
    }
  });
  const untilCurrent = async (sc) => {
    await sc.listening('unix', 30000);
    const api = connectControl(`unix:${path.join(out, SOCKET)}`);
    apis.push(api);
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        const { response } = await api.getStatus({ timeoutMs: 2000 });
        const profile = response.profiles[0];
        if (profile?.access_key_id === currentId) return { api, generation: Number(profile.generation) };
      } catch (err) {
        if (!sc.alive()) throw err;
      }
      if (!sc.alive()) throw new Error('credsync died during its start');
      if (Date.now() > deadline) throw new Error(`credsync did not fetch ${currentId} within 30 s`);
      await delay(5);
    }
  };

  // ---- The first start and the reader.
  let sc = await start('crash-first');
  let { api } = await untilCurrent(sc);
  const readerOut = [];
  const readerErr = [];
  const reader = spawn(readerBinary, [file, pairsFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  reader.stdout.on('data', (c) => readerOut.push(c));
  reader.stderr.on('data', (c) => readerErr.push(c));
  const readerExit = new Promise((resolve) => reader.on('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(() => { if (reader.exitCode === null) reader.kill('SIGKILL'); });
  const generationAtReaderStart = snapshot(out).generation;

  // ---- Phase 1: rotations back to back through one sidecar.
  const phase1Started = Date.now();
  let lastGeneration = generationAtReaderStart;
  let refreshed = 0;
  let rotateMs = 0;
  let refreshMs = 0;
  for (let i = 0; i < ROTATIONS; i += 1) {
    const old = currentId;
    const t0 = performance.now();
    const answer = await rotate();
    const t1 = performance.now();
    const { response } = await api.refresh({ profile: 'default', failed_access_key_id: old, reason: 'crash test' });
    rotateMs += t1 - t0;
    refreshMs += performance.now() - t1;
    assert.equal(response.access_key_id, answer.access_key_id, `rotation ${i}: Refresh answered another key`);
    assert.equal(response.outcome, 'OUTCOME_REFRESHED', `rotation ${i}`);
    const generation = Number(response.generation);
    assert.equal(generation, lastGeneration + 1, `rotation ${i}: generations must count every write`);
    lastGeneration = generation;
    refreshed += 1;
    if (reader.exitCode !== null) assert.fail(`the reader exited early: ${Buffer.concat(readerErr)}`);
  }
  const phase1Ms = Date.now() - phase1Started;
  const phase1Written = lastGeneration - generationAtReaderStart;
  assert.equal(snapshot(out).generation, lastGeneration, '..data/.generation after phase 1');
  api.close();

  // ---- Phase 2: SIGKILL at random instants, restart, check the cleanup.
  const phase2Started = Date.now();
  const figures = {
    kills: 0, killsBeforeServing: 0, killsAfterRefreshSent: 0, killsWhileDriving: 0,
    killsInPublish: { beforeSwitch: 0, afterSwitch: 0 },
    startsChecked: 0, rotationsWhileDown: 0, publishesInterrupted: 0,
    leftovers: { interruptedDirs: 0, tempLinks: 0, supersededDirs: 0 },
    leftoversRemaining: 0,
  };
  const generationBeforeKills = lastGeneration;
  let previous = null;  // the snapshot after the last kill, not yet checked

  // The start after a kill removed every leftover of the killed run.
  const checkStart = (before) => {
    const now = snapshot(out);
    assert.ok(now.target && now.names.includes(now.target), `..data names a missing directory: ${now.target}`);
    const problems = [];
    for (const name of now.names) {
      if (name === 'credentials.ini') {
        const link = fs.readlinkSync(path.join(out, name));
        if (link !== '..data/credentials.ini') problems.push(`credentials.ini -> ${link}`);
      } else if (name === '..data' || name === SOCKET || name === now.target) {
        // Expected.
      } else if (TIMESTAMP_DIR.test(name) && name === before.target) {
        // Superseded by this start's first publish; kept for its grace.
      } else if (TIMESTAMP_DIR.test(name) && !before.names.includes(name) &&
                 now.generations[name] !== null && now.generations[name] < now.generation) {
        // Superseded since this start.
      } else {
        problems.push(name);
      }
    }
    if (problems.length) {
      figures.leftoversRemaining += problems.length;
      assert.fail(`after a restart the output directory still holds ${JSON.stringify(problems)} ` +
                  `(before the restart: ${JSON.stringify(before)}; now: ${JSON.stringify(now)})`);
    }
    figures.startsChecked += 1;
  };

  const countLeftovers = (shot) => {
    let interrupted = false;
    for (const name of shot.names) {
      if (name === '..data_tmp' || name === '..link_tmp') {
        figures.leftovers.tempLinks += 1;
        interrupted = true;
      } else if (TIMESTAMP_DIR.test(name) && name !== shot.target) {
        const generation = shot.generations[name];
        if (generation === null || generation > shot.generation) {
          figures.leftovers.interruptedDirs += 1;
          interrupted = true;
        } else {
          figures.leftovers.supersededDirs += 1;
        }
      } else if (!['credentials.ini', '..data', SOCKET].includes(name) && name !== shot.target) {
        assert.fail(`unexpected entry ${name} in the output directory after a kill`);
      }
    }
    if (interrupted) figures.publishesInterrupted += 1;
  };

  // How each cycle's kill is timed.
  const KILL_AT_RANDOM = 0;     // a uniformly random instant after the start
  const KILL_IN_PUBLISH = 1;    // 0-300 µs after a new data directory appears
  const KILL_AFTER_REFRESH = 2; // 0-6 ms after a Refresh went out
  for (let cycle = 0; cycle < KILLS; cycle += 1) {
    if (cycle > 0) sc = await start(`crash-${cycle}`);
    const mode = cycle % 3;
    let killed = false;
    let serving = false;
    let driving = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      sc.stop('SIGKILL');
    };

    let killer = null;
    let killedInDir = null;
    if (mode === KILL_IN_PUBLISH) {
      killer = spawn(killerBinary, [String(sc.pid), out, String(randomInt(300))],
                     { stdio: ['ignore', 'pipe', 'inherit'] });
      const killerExit = new Promise((resolve) => killer.on('exit', resolve));
      killer.done = killerExit;
      let text = '';
      await new Promise((resolve, reject) => {
        killer.stdout.on('data', (chunk) => {
          text += chunk;
          if (text.startsWith('ready\n')) resolve();
          const m = text.match(/killed (\S+)\n/);
          if (m) {
            killed = true;
            killedInDir = m[1];
          }
        });
        killerExit.then((code) => reject(new Error(`the killer exited (${code}) before it was ready`)));
      });
    }

    const driver = (async () => {
      let cycleApi;
      try {
        if (cycle > 0) {
          const ready = await untilCurrent(sc);
          cycleApi = ready.api;
          serving = true;
          if (previous) {
            checkStart(previous);
            previous = null;
          }
        } else {
          cycleApi = connectControl(`unix:${path.join(out, SOCKET)}`);
          serving = true;
        }
        driving = true;
        while (!killed && sc.alive()) {
          const old = currentId;
          await rotate();
          if (killed) break;
          const call = cycleApi.refresh({ profile: 'default', failed_access_key_id: old, reason: 'crash test' },
                                        { timeoutMs: 10000 });
          if (mode === KILL_AFTER_REFRESH) setTimeout(kill, Math.random() * 6);
          await call;
        }
      } catch (err) {
        // The kill may be noticed (a failed call) before it is reported.
        const deadline = Date.now() + 2000;
        while (!killed && sc.alive() && Date.now() < deadline) await delay(10);
        if (!killed && sc.alive()) throw err;
      } finally {
        cycleApi?.close();
      }
    })();
    // The targeted kill falls back to a timer should no publish come.
    const timer = mode === KILL_AT_RANDOM ? setTimeout(kill, randomInt(KILL_WINDOW_MS))
        : mode === KILL_IN_PUBLISH ? setTimeout(kill, 5000) : null;
    const [driverResult] = await Promise.allSettled([driver]);
    if (timer) clearTimeout(timer);
    if (driverResult.status === 'rejected') {
      throw new Error(`cycle ${cycle}: the driver failed before the kill: ${driverResult.reason?.stack}`);
    }
    const exit = await sc.stop('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL', `cycle ${cycle}: credsync exited on its own: ${JSON.stringify(exit)}`);
    if (killer) {
      if (killer.exitCode === null) killer.kill('SIGTERM');
      await killer.done;
    }
    figures.kills += 1;
    const shot = snapshot(out);
    if (killedInDir !== null) {
      // Where inside the publish the kill landed.
      if (shot.target === killedInDir) figures.killsInPublish.afterSwitch += 1;
      else figures.killsInPublish.beforeSwitch += 1;
    } else if (!serving) {
      figures.killsBeforeServing += 1;
    } else if (mode === KILL_AFTER_REFRESH) {
      figures.killsAfterRefreshSent += 1;
    } else if (driving) {
      figures.killsWhileDriving += 1;
    }

    countLeftovers(shot);
    previous = previous ? { ...shot, names: [...new Set([...previous.names, ...shot.names])] } : shot;
    // Sometimes the key changes while credsync is down: its next start publishes.
    if (Math.random() < 0.5) {
      await rotate();
      figures.rotationsWhileDown += 1;
    }
    if (reader.exitCode !== null) assert.fail(`the reader exited early: ${Buffer.concat(readerErr)}`);
  }

  // ---- The last start: clean, current, and stopped gracefully.
  sc = await start('crash-last');
  ({ api } = await untilCurrent(sc));
  checkStart(previous);
  api.close();
  const stopped = await sc.stop('SIGTERM');
  assert.equal(stopped.code, 0, `credsync did not stop cleanly: ${JSON.stringify(stopped)}`);
  const phase2Ms = Date.now() - phase2Started;
  const final = snapshot(out);

  reader.kill('SIGTERM');
  const readerStatus = await readerExit;
  const readerText = Buffer.concat(readerOut).toString('utf8').trim();
  const readerLog = Buffer.concat(readerErr).toString('utf8');
  let counts;
  try {
    counts = JSON.parse(readerText);
  } catch {
    assert.fail(`the reader printed no counts (exit ${JSON.stringify(readerStatus)}): ${readerText}\n${readerLog}`);
  }

  const written = final.generation - generationAtReaderStart;
  const summary = {
    rotations_written: written,
    rotations_written_phase1: phase1Written,
    rotations_written_phase2: final.generation - generationBeforeKills,
    rotations_requested: rotations,
    kills: figures.kills,
    kills_before_serving: figures.killsBeforeServing,
    kills_in_publish_before_switch: figures.killsInPublish.beforeSwitch,
    kills_in_publish_after_switch: figures.killsInPublish.afterSwitch,
    kills_ms_after_refresh: figures.killsAfterRefreshSent,
    kills_at_random_while_rotating: figures.killsWhileDriving,
    publishes_interrupted: figures.publishesInterrupted,
    restarts_checked_clean: figures.startsChecked,
    leftovers_found: figures.leftovers.interruptedDirs + figures.leftovers.tempLinks +
        figures.leftovers.supersededDirs,
    leftovers_interrupted_dirs: figures.leftovers.interruptedDirs,
    leftovers_temp_links: figures.leftovers.tempLinks,
    leftovers_superseded_dirs: figures.leftovers.supersededDirs,
    leftovers_remaining: figures.leftoversRemaining,
    reads: counts.reads,
    bad_reads: counts.bad,
    bad_reads_by_kind: counts.bad_by_kind,
    distinct_keys_read: counts.distinct_keys,
    key_changes_seen: counts.changes_seen,
    phase1_ms_per_rotate_call: Math.round(rotateMs / Math.max(1, refreshed) * 100) / 100,
    phase1_ms_per_refresh_call: Math.round(refreshMs / Math.max(1, refreshed) * 100) / 100,
    phase1_seconds: Math.round(phase1Ms / 100) / 10,
    phase2_seconds: Math.round(phase2Ms / 100) / 10,
    total_seconds: Math.round((Date.now() - started) / 100) / 10,
    admin_connections: agent ? 'kept alive' : 'fresh per call',
    output_directory_fs: scratch.startsWith('/dev/shm') ? 'tmpfs' : 'disk',
  };
  const line = `crash-consistency summary: rotations written ${summary.rotations_written} ` +
      `(${summary.rotations_written_phase1} back to back, ${summary.rotations_written_phase2} across kills), ` +
      `kills ${summary.kills} (${summary.kills_before_serving} during start, ` +
      `${summary.kills_in_publish_before_switch + summary.kills_in_publish_after_switch} inside a publish ` +
      `[${summary.kills_in_publish_before_switch} before the ..data switch], ` +
      `${summary.kills_ms_after_refresh} ms after a Refresh, ${summary.kills_at_random_while_rotating} at random ` +
      `while rotating; ${summary.publishes_interrupted} left an interrupted publish), ` +
      `reads ${summary.reads}, bad reads ${summary.bad_reads}, distinct keys read ${summary.distinct_keys_read}, ` +
      `leftovers found ${summary.leftovers_found} (${summary.leftovers_interrupted_dirs} interrupted dirs, ` +
      `${summary.leftovers_temp_links} temp links, ${summary.leftovers_superseded_dirs} superseded dirs) ` +
      `and cleaned at the next start ${summary.leftovers_found - summary.leftovers_remaining}, ` +
      `${summary.total_seconds} s`;
  process.stdout.write(`${line}\n`);
  if (process.env.CREDSYNC_E2E_LOG_DIR) {
    fs.mkdirSync(process.env.CREDSYNC_E2E_LOG_DIR, { recursive: true });
    fs.writeFileSync(path.join(process.env.CREDSYNC_E2E_LOG_DIR, 'crash_consistency_summary.json'),
                     `${JSON.stringify(summary, null, 2)}\n`);
  }

  assert.equal(counts.bad, 0, `the reader saw bad reads: ${JSON.stringify(counts.bad_by_kind)}\n${readerLog}`);
  assert.equal(readerStatus.code, 0, `reader exit ${JSON.stringify(readerStatus)}\n${readerLog}`);
  assert.ok(written >= ROTATIONS, `only ${written} rotations were written, want at least ${ROTATIONS}`);
  assert.ok(figures.kills >= KILLS, `only ${figures.kills} kills`);
  assert.ok(counts.distinct_keys > 1 && counts.reads > written, 'the reader must see the rotations');
  const content = fs.readFileSync(file, 'utf8');
  assert.match(content, new RegExp(`^access_key_id = ${currentId}$`, 'm'), 'the file ends on the newest key');
});
