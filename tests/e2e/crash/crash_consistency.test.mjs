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
//   started and killed with SIGKILL at a random instant (during its start,
//   or while rotations are driven, half of the time a few milliseconds after
//   a Refresh went out, so that fetches and publishes are in flight), and
//   the next start is checked: the output directory holds only
//   credentials.ini, ..data, the current timestamped directory, the socket,
//   and directories superseded since that start; every leftover of the
//   killed run (interrupted publishes, `..data_tmp`, superseded directories)
//   is gone.
//
// The reader knows every AccessKey pair: the driver appends each pair the
// emulator's rotate answer names to a file the reader loads. The figures go
// to stdout as one "crash-consistency summary:" line and, as JSON, to
// $CREDSYNC_E2E_LOG_DIR/crash_consistency_summary.json.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_crash_consistency), which
// sets CREDSYNC_BIN, CREDSYNC_CRASH_READER and the emulator's CA.

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

  const emu = await startEmulator({ logLevel: 'debug' });
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

  // Admin calls on one kept-alive TLS connection: thousands of them.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: emu.ca });
  cleanups.push(() => agent.destroy());
  const rotatePath = `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`;
  let rotations = 0;
  const rotate = () => new Promise((resolve, reject) => {
    const body = JSON.stringify({ revoke_previous: rotations % 2 === 0 });
    const req = https.request({
      host: '127.0.0.1', port: emu.port, method: 'POST', path: rotatePath, agent,
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
  const untilCurrent = async (sc) => {
    await sc.listening('unix', 30000);
    const api = connectControl(`unix:${path.join(out, SOCKET)}`);
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
  for (let i = 0; i < ROTATIONS; i += 1) {
    const old = currentId;
    const answer = await rotate();
    const { response } = await api.refresh({ profile: 'default', failed_access_key_id: old, reason: 'crash test' });
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

  for (let cycle = 0; cycle < KILLS; cycle += 1) {
    if (cycle > 0) sc = await start(`crash-${cycle}`);
    // Half the kills at a uniformly random instant after the start, half a
    // random few milliseconds after a Refresh went out (a fetch and a
    // publish in flight).
    const afterRefresh = cycle % 2 === 1;
    const killAt = Date.now() + randomInt(KILL_WINDOW_MS);
    const killDelayAfterRefresh = Math.random() * 6;
    let killed = false;
    let serving = false;
    let driving = false;
    const kill = () => {
      if (killed) return;
      killed = true;
      sc.stop('SIGKILL');
    };

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
        while (!killed) {
          const old = currentId;
          await rotate();
          if (killed) break;
          const call = cycleApi.refresh({ profile: 'default', failed_access_key_id: old, reason: 'crash test' },
                                        { timeoutMs: 10000 });
          if (afterRefresh) setTimeout(kill, killDelayAfterRefresh);
          await call;
        }
      } catch (err) {
        if (!killed) throw err;
      } finally {
        cycleApi?.close();
      }
    })();
    const timer = afterRefresh ? null : setTimeout(kill, Math.max(0, killAt - Date.now()));
    const driverResult = await Promise.allSettled([driver]);
    if (timer) clearTimeout(timer);
    if (!killed) assert.fail(`cycle ${cycle}: the driver stopped before the kill: ${driverResult[0].reason}`);
    const exit = await sc.stop('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL', `cycle ${cycle}: credsync exited on its own: ${JSON.stringify(exit)}`);
    figures.kills += 1;
    if (!serving) figures.killsBeforeServing += 1;
    else if (afterRefresh) figures.killsAfterRefreshSent += 1;
    else if (driving) figures.killsWhileDriving += 1;
    if (driverResult[0].status === 'rejected' && !killed) throw driverResult[0].reason;

    const shot = snapshot(out);
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
    phase1_seconds: Math.round(phase1Ms / 100) / 10,
    phase2_seconds: Math.round(phase2Ms / 100) / 10,
    total_seconds: Math.round((Date.now() - started) / 100) / 10,
    output_directory_fs: scratch.startsWith('/dev/shm') ? 'tmpfs' : 'disk',
  };
  const line = `crash-consistency summary: rotations written ${summary.rotations_written} ` +
      `(${summary.rotations_written_phase1} back to back, ${summary.rotations_written_phase2} across kills), ` +
      `kills ${summary.kills} (${summary.kills_before_serving} during start, ` +
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
