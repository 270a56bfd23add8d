// Change hooks end to end (issue 8): the real sidecar against the emulator,
// with a command hook that records what it was given and copies the file,
// signal hooks to real processes found by name and through a pid file, and a
// hook that always times out. A rotation and an app's Refresh must reach the
// file, the hooks must follow each change, and the slow hook must never hold
// up the file or the control API.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_hooks).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import {
  httpGet, runCredsync, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig,
} from './sidecar.mjs';

let emu;
const children = [];

before(async () => {
  emu = await startEmulator();
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await emu?.stop();
});

// A shell that appends a line to `record` on every SIGHUP, started under the
// program name `name` (a symlink to /bin/sh: the kernel names the process
// after the file it executed), writing its pid to `pidFile` when given.
function startHupTarget(dir, name, record, pidFile) {
  const program = path.join(dir, name);
  fs.symlinkSync('/bin/sh', program);
  const script = `trap 'echo HUP >> "${record}"' HUP; ${pidFile ? `echo $$ > "${pidFile}";` : ''}` +
    'while :; do sleep 0.05; done';
  const child = spawn(program, ['-c', script], { stdio: 'ignore' });
  children.push(child);
  return child;
}

function lines(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
}

describe('change hooks', () => {
  // Verifies the four kinds of behaviour in one pod-like run: the command
  // hook runs after the first write and after a Refresh-driven rotation,
  // with the generation, the changed profiles and the output directory, and
  // finds the file already complete; the signal hooks reach their processes
  // by name and by pid file after each change; the hook that times out is
  // killed and counted, while Refresh answers and the file follows at once.
  it('run after each change, in order, without holding up the sidecar', async () => {
    const secrets = ['acs/ram/user/hooks-app', 'acs/ram/user/hooks-reporting'];
    const world = await setUpRrsaWorld(emu, { name: 'hooks', secrets });
    const out = path.join(world.dir, 'out');
    const file = path.join(out, 'credentials.ini');
    const record = path.join(world.dir, 'command.log');
    const byName = path.join(world.dir, 'by-name.hups');
    const byPidFile = path.join(world.dir, 'by-pidfile.hups');
    const pidFile = path.join(world.dir, 'target.pid');
    // Unique per run, at most 15 bytes: the kernel's limit on a process name.
    const name = `hupt${process.pid % 100000}`;
    // Each target writes its pid once its trap is set: a SIGHUP before that
    // would end the shell. The by-name target's pid file is only that signal.
    const nameReady = path.join(world.dir, 'by-name.pid');
    const nameTarget = startHupTarget(world.dir, name, byName, nameReady);
    startHupTarget(world.dir, `pidt${process.pid % 100000}`, byPidFile, pidFile);
    await waitForFile(nameReady, (c) => c.trim().length > 0);
    await waitForFile(pidFile, (c) => c.trim().length > 0);

    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [
        { name: 'app', secret_name: secrets[0] },
        { name: 'reporting', secret_name: secrets[1] },
      ],
      output: { directory: out },
      refresh: { jitter: 0, rotation_jitter: '0s' },
      hooks: [
        {
          name: 'record',
          command: ['/bin/sh', '-c',
            // The line last: once it is there, the run's other files are complete.
            'cat "$CREDSYNC_CREDENTIALS_FILE" > "$0.file.$CREDSYNC_GENERATION"; env > "$0.env"; ' +
            'echo "$CREDSYNC_GENERATION $CREDSYNC_CHANGED_PROFILES $CREDSYNC_OUTPUT_DIRECTORY" >> "$0"', record],
        },
        { name: 'reload-by-name', signal: { signal: 'SIGHUP', process: name } },
        { name: 'reload-by-pidfile', signal: { pid_file: pidFile } },
        { name: 'slow', command: ['sleep', '60'], timeout: '2s' },
      ],
      log: { level: 'debug' },
    });
    const sc = await startSidecar({ configFile, env: world.env, name: 'hooks' });
    try {
      // The first write runs every hook.
      await until(() => lines(record).length >= 1, 'the command hook after the first write');
      assert.deepEqual(lines(record), [`1 app,reporting ${out}`]);
      const first = fs.readFileSync(file, 'utf8');
      assert.equal(fs.readFileSync(`${record}.file.1`, 'utf8'), first,
                   'the hook saw the complete file of its generation');
      for (const secret of secrets) assert.match(first, new RegExp(world.secrets[secret].access_key_id));
      const env = fs.readFileSync(`${record}.env`, 'utf8');
      assert.match(env, /^CREDSYNC_HOOK=record$/m);
      assert.match(env, /^CREDSYNC_CREDENTIALS_FILE=.*credentials\.ini$/m);
      assert.match(env, /^PATH=/m);
      assert.doesNotMatch(env, /ALIBABA_CLOUD_/, 'the identity environment leaked into a hook');
      await until(() => lines(byName).length === 1 && lines(byPidFile).length === 1,
                  'a SIGHUP to each target after the first write');
      const named = await sc.waitForLog((l) => l.msg === 'hook ran' && l.hook === 'reload-by-name',
                                        'the by-name signal hook');
      assert.equal(named.detail, `SIGHUP sent to pid ${nameTarget.pid}`);

      // The slow hook is killed at its timeout; meanwhile nothing waits for it.
      const timedOut = await sc.waitForLog((l) => l.msg === 'hook failed' && l.hook === 'slow',
                                           'the slow hook timing out', 20000);
      assert.equal(timedOut.result, 'timeout');
      assert.match(timedOut.detail, /^timed out after 2s; process group terminated, ended by SIGTERM$/);

      // A rotation that the app reports: the Refresh answers promptly although
      // the slow hook runs again right after it, and every hook follows.
      const old = world.secrets[secrets[0]].access_key_id;
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(secrets[0])}/rotate`, {});
      const started = Date.now();
      const cli = await runCredsync(['refresh', '--profile', 'app', '--failed-key-id', old,
                                     '--socket', path.join(out, 'credsync.sock')], { name: 'hooks-refresh' });
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok(Date.now() - started < 5000, `Refresh took ${Date.now() - started} ms`);
      assert.match(fs.readFileSync(file, 'utf8'), new RegExp(rotated.access_key_id));

      await until(() => lines(record).length >= 2, 'the command hook after the rotation');
      assert.deepEqual(lines(record), [`1 app,reporting ${out}`, `2 app ${out}`]);
      const second = fs.readFileSync(`${record}.file.2`, 'utf8');
      assert.match(second, new RegExp(rotated.access_key_id));
      assert.doesNotMatch(second, new RegExp(old));
      await until(() => lines(byName).length === 2 && lines(byPidFile).length === 2,
                  'a second SIGHUP to each target after the rotation');

      // While the slow hook runs its second time, a second Refresh is served too.
      const again = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(secrets[0])}/rotate`, {});
      const cli2 = await runCredsync(['refresh', '--profile', 'app', '--failed-key-id', rotated.access_key_id,
                                      '--socket', path.join(out, 'credsync.sock')], { name: 'hooks-refresh2' });
      assert.equal(cli2.code, 0, cli2.stderr);
      assert.match(fs.readFileSync(file, 'utf8'), new RegExp(again.access_key_id));
      await until(() => lines(record).length >= 3, 'the command hook after the second rotation', 20000);
      assert.equal(lines(record)[2], `3 app ${out}`);

      // Metrics count every run by result: three changes, each hook three
      // runs (the slow one's last ends 2 s after the others).
      const address = await sc.listening('http');
      const metrics = await until(async () => {
        const { text } = await httpGet(address, '/metrics');
        return /credsync_hook_runs_total\{hook="slow",result="timeout"\} 3\n/.test(text) ? text : null;
      }, 'three timeouts of the slow hook in /metrics', 20000);
      assert.match(metrics, /credsync_hook_runs_total\{hook="record",result="ok"\} 3\n/);
      assert.match(metrics, /credsync_hook_runs_total\{hook="reload-by-name",result="ok"\} 3\n/);
      assert.match(metrics, /credsync_hook_runs_total\{hook="reload-by-pidfile",result="ok"\} 3\n/);
      assert.match(metrics, /credsync_hook_runs_total\{hook="record",result="failed"\} 0\n/);
      assert.match(metrics, /credsync_hook_duration_seconds_count\{hook="slow"\} 3\n/);
      const ready = await httpGet(address, '/readyz');
      assert.equal(ready.status, 200, 'a failing hook must not affect readiness');
    } finally {
      const stopped = await sc.stop();
      assert.equal(stopped.code, 0, sc.stderr());
      assert.ok(stopped.ms < 8000, `SIGTERM took ${stopped.ms} ms`);
    }
  });

  // Verifies SIGTERM while a command hook runs: credsync gives it a
  // second, terminates its process group and exits 0 within a few seconds;
  // the command's process is gone.
  it('a stop ends a running command hook', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'hooks-stop', secrets: ['acs/ram/user/hooks-stop'] });
    const out = path.join(world.dir, 'out');
    const pidFile = path.join(world.dir, 'hook.pid');
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: 'acs/ram/user/hooks-stop' }],
      output: { directory: out },
      hooks: [{ name: 'long', command: ['/bin/sh', '-c', 'echo $$ > "$0"; exec sleep 600', pidFile], timeout: '1h' }],
    });
    const sc = await startSidecar({ configFile, env: world.env, name: 'hooks-stop' });
    const pid = Number((await waitForFile(pidFile, (c) => c.trim().length > 0)).trim());
    const stopped = await sc.stop();
    assert.equal(stopped.code, 0, sc.stderr());
    assert.ok(stopped.ms < 6000, `SIGTERM took ${stopped.ms} ms`);
    const line = sc.logs().find((l) => l.msg === 'hook failed' && l.hook === 'long');
    assert.ok(line, sc.stderr());
    assert.equal(line.result, 'failed');
    assert.match(line.detail, /^credsync is stopping; process group terminated, ended by SIGTERM$/);
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the hook\'s process outlived credsync');
  });

  // Verifies a signal hook whose process does not exist is a logged,
  // counted no_process run that changes nothing else: the file is written
  // and the sidecar is ready.
  it('a hook without its process does not affect the file or readiness', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'hooks-none', secrets: ['acs/ram/user/hooks-none'] });
    const out = path.join(world.dir, 'out');
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: 'acs/ram/user/hooks-none' }],
      output: { directory: out },
      hooks: [{ name: 'nobody', signal: { process: `none${process.pid % 100000}` } }],
    });
    const sc = await startSidecar({ configFile, env: world.env, name: 'hooks-none' });
    try {
      await waitForFile(path.join(out, 'credentials.ini'));
      const line = await sc.waitForLog((l) => l.hook === 'nobody', 'the hook\'s log line');
      // The first write: the app usually starts after it, so this is not a warning.
      assert.equal(line.level, 'info');
      const address = await sc.listening('http');
      await until(async () => (await httpGet(address, '/readyz')).status === 200, 'readiness');
      const { text } = await httpGet(address, '/metrics');
      assert.match(text, /credsync_hook_runs_total\{hook="nobody",result="no_process"\} 1\n/);
    } finally {
      await sc.stop();
    }
  });
});
