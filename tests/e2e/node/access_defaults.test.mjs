// Access defaults, end to end (issue 6): with nothing configured, the
// control socket is 0660 and credentials.ini 0440 (the file the symlink
// names); the control API has no TCP listener unless control.tcp_address is
// set (checked in /proc/net/tcp{,6} against the process's own sockets, not
// only in its log); and tls.insecure_skip_verify: true logs a warning at
// every start, of `run` and of `sync --once`.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import {
  parseLogLines, runCredsync, setUpRrsaWorld, startSidecar, waitForFile, writeConfig,
} from './sidecar.mjs';

let emu;
before(async () => { emu = await startEmulator(); });
after(async () => { await emu?.stop(); });

const LISTEN = '0A';  // TCP_LISTEN in /proc/net/tcp

// The TCP sockets in LISTEN state that process `pid` holds: ['127.0.0.1:PORT', ...].
function tcpListeners(pid) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const out = [];
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try { text = fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8'); } catch { continue; }
    for (const line of text.trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [addrHex, portHex] = f[1].split(':');
      if (f[3] !== LISTEN || !inodes.has(f[9])) continue;
      // IPv4 is one little-endian word; gRPC binds IPv4 on a v4-mapped
      // IPv6 socket (::ffff:a.b.c.d), whose last word is the address.
      const v4 = table === 'tcp' ? addrHex
        : addrHex.startsWith('0000000000000000FFFF0000') ? addrHex.slice(24) : null;
      const addr = v4 ? Buffer.from(v4, 'hex').reverse().join('.') : `[${addrHex}]`;
      out.push(`${addr}:${parseInt(portHex, 16)}`);
    }
  }
  return out.sort();
}

function config(world, extra = {}) {
  const { control, ...rest } = extra;
  return writeConfig(world.dir, {
    kms: { endpoints: [emu.endpoint] },
    tls: { ca_file: emu.caFile },
    profiles: [{ name: 'default', secret_name: world.secretName }],
    output: { directory: path.join(world.dir, 'out') },
    ...rest,
    control: { ...control },
  });
}

async function world(name) {
  const secretName = `acs/ram/user/${name}-app`;
  const w = await setUpRrsaWorld(emu, { name, secrets: [secretName] });
  return { ...w, secretName, out: path.join(w.dir, 'out') };
}

describe('access defaults', () => {
  // Verifies the default modes: socket 0660, credentials.ini 0440 (the
  // target of the symlink), and that the only TCP listener is the HTTP
  // probe port the harness configures (127.0.0.1:0), not the control API.
  it('socket 0660, file 0440, no control API on TCP by default', async () => {
    const w = await world('accdefault');
    const sc = await startSidecar({ configFile: config(w), env: w.env, name: 'accdefault' });
    try {
      const socket = await sc.listening('unix');
      const http = await sc.listening('http');
      const file = path.join(w.out, 'credentials.ini');
      await waitForFile(file);
      assert.ok(fs.lstatSync(file).isSymbolicLink(), 'credentials.ini is a symlink into ..data');
      const target = fs.realpathSync(file);
      assert.notEqual(target, file);
      assert.equal((fs.statSync(file).mode & 0o7777).toString(8), '440', `mode of ${target}`);
      const socketStat = fs.statSync(socket);
      assert.ok(socketStat.isSocket());
      assert.equal((socketStat.mode & 0o7777).toString(8), '660', `mode of ${socket}`);
      assert.deepEqual(tcpListeners(sc.pid), [http], 'TCP listeners of credsync run');
      assert.equal(sc.logs().filter((l) => l.msg === 'control listening' && l.transport === 'tcp').length, 0);
    } finally {
      await sc.stop();
    }
  });

  // Verifies that with the HTTP port turned off there is no TCP listener at
  // all, and that control.tcp_address turns one on (so the check above
  // would see one).
  it('TCP only when configured', async () => {
    const w = await world('acctcp');
    let sc = await startSidecar({ configFile: config(w, { control: { http_address: '' } }), env: w.env, name: 'accnotcp' });
    try {
      await sc.listening('unix');
      await waitForFile(path.join(w.out, 'credentials.ini'));
      assert.deepEqual(tcpListeners(sc.pid), [], 'TCP listeners with control.http_address ""');
    } finally {
      await sc.stop();
    }
    sc = await startSidecar({ configFile: config(w, { control: { http_address: '', tcp_address: '127.0.0.1:0' } }),
                              env: w.env, name: 'acctcpon' });
    try {
      const address = await sc.listening('tcp');
      assert.deepEqual(tcpListeners(sc.pid), [address], 'TCP listeners with control.tcp_address');
    } finally {
      await sc.stop();
    }
  });

  // Verifies tls.insecure_skip_verify: true logs the warning at every start:
  // two starts of `run` and one `sync --once`, each with its own warning.
  it('insecure_skip_verify warns at every start', async () => {
    const w = await world('accinsecure');
    const configFile = config(w, { tls: { insecure_skip_verify: true } });
    const isWarning = (l) => l.level === 'warn' && /TLS verification is OFF/.test(l.msg) &&
                             /insecure_skip_verify/.test(l.msg);
    for (const start of [1, 2]) {
      const sc = await startSidecar({ configFile, env: w.env, name: `accinsecure${start}` });
      try {
        await sc.waitForLog(isWarning, `the TLS warning at start ${start}`);
        await sc.listening('unix');
        assert.equal(sc.logs().filter(isWarning).length, 1, sc.stderr());
      } finally {
        await sc.stop();
      }
    }
    const once = await runCredsync(['sync', '--once', '--config', configFile, '--timeout', '20s'],
                                   { env: w.env, name: 'accinsecure-once' });
    assert.equal(once.code, 0, once.stderr);
    assert.equal(parseLogLines(once.stderr).filter(isWarning).length, 1, once.stderr);
    // And without the setting, no such warning.
    const verified = await runCredsync(['sync', '--once', '--config', config(w), '--timeout', '20s'],
                                       { env: w.env, name: 'accverified-once' });
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(parseLogLines(verified.stderr).filter(isWarning).length, 0, verified.stderr);
  });
});
