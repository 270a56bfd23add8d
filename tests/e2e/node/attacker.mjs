// A hostile client of one credsync listener, run as its own process so its
// work never delays the probes the test (or benchmark) measures:
//
//   node attacker.mjs MODE TARGET COUNT
//
// TARGET is HOST:PORT or a Unix socket path. MODE:
//   idle     hold COUNT connections open, silent; reopen any the server closes
//   trickle  hold COUNT connections, each sending a request one byte a second
//   storm    open and close connections as fast as it can, COUNT at a time
// Prints one JSON line {"ready":true,"open":N} once COUNT connections have
// been opened (those the server closed are reopened; storm: once it is
// running), then a line {"open":N,"closed_by_server":M,
// "connects":K} every second. Ends on SIGTERM or when stdin closes.
// startAttacker() runs it from a test or benchmark.

import { spawn } from 'node:child_process';
import net from 'node:net';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);

// Starts `node attacker.mjs mode target count`; resolves once it reports
// its connections up. stop() ends it and resolves its last report.
export async function startAttacker(mode, target, count) {
  const child = spawn(process.execPath, [SELF, mode, target, String(count)],
                      { stdio: ['pipe', 'pipe', 'inherit'] });
  let last = null;
  const lines = readline.createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      last = JSON.parse(line);
      if (last.ready) resolve(last);
    });
    child.on('exit', (code) => reject(new Error(`attacker ${mode} exited (${code}) before it was ready`)));
  });
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`attacker ${mode}: ${count} connections not opened within 60 s (${JSON.stringify(last)})`));
    }, 60000);
  });
  try {
    await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return {
    last: () => last,
    async stop() {
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      return last;
    },
  };
}

function attack(argv) {
  const [mode, target, countText] = argv;
  const count = Number(countText);
  if (!['idle', 'trickle', 'storm'].includes(mode) || !target || !(count > 0)) {
    console.error('usage: node attacker.mjs idle|trickle|storm HOST:PORT|SOCKET COUNT');
    process.exit(2);
  }
  const connectOptions = target.includes('/')
    ? { path: target }
    : { host: target.slice(0, target.lastIndexOf(':')), port: Number(target.slice(target.lastIndexOf(':') + 1)) };
  const REQUEST = 'GET /healthz HTTP/1.1\r\nHost: attacker\r\nX-Padding: ' + 'p'.repeat(64) + '\r\n\r\n';

  let open = 0;
  let closedByServer = 0;
  let connects = 0;
  let stopping = false;
  let readySent = false;

  function report(extra = {}) {
    process.stdout.write(`${JSON.stringify({ ...extra, open, closed_by_server: closedByServer, connects })}\n`);
  }

  // One held connection: reopened when the server closes it, until stopping.
  function hold() {
    if (stopping) return;
    const socket = net.connect(connectOptions);
    let timer = null;
    let sent = 0;
    let connected = false;
    socket.on('connect', () => {
      connected = true;
      connects += 1;
      open += 1;
      if (!readySent && connects >= count) {
        readySent = true;
        report({ ready: true });
      }
      if (mode === 'trickle') {
        timer = setInterval(() => {
          if (sent < REQUEST.length) socket.write(REQUEST[sent++]);
        }, 1000);
      }
    });
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', (hadError) => {
      if (timer) clearInterval(timer);
      if (connected) open -= 1;
      if (!stopping) {
        if (connected) closedByServer += 1;
        setTimeout(hold, hadError ? 50 : 0);
      }
    });
  }

  // Connect, close, repeat: `count` loops at once.
  function storm() {
    if (stopping) return;
    const socket = net.connect(connectOptions);
    socket.on('connect', () => {
      connects += 1;
      socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => setImmediate(storm));
  }

  if (mode === 'storm') {
    for (let i = 0; i < count; i += 1) storm();
    readySent = true;
    report({ ready: true });
  } else {
    // Opened in waves so a listener's backlog is not the thing measured.
    let started = 0;
    const wave = () => {
      for (let i = 0; i < 200 && started < count; i += 1, started += 1) hold();
      if (started < count) setTimeout(wave, 10);
    };
    wave();
  }

  const ticker = setInterval(() => report(), 1000);
  const stop = () => {
    stopping = true;
    clearInterval(ticker);
    report({ stopped: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}

if (process.argv[1] === SELF) attack(process.argv.slice(2));
