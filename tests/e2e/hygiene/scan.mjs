// Looks for every secret the emulators issued in every log credsync and its
// CLI wrote during an e2e run (tests/e2e/hygiene/run.sh runs the suites).
//
//   node scan.mjs LOG_DIR [--min-secrets N] [--min-lines L] [--min-debug-lines M]
//
// Secrets come from LOG_DIR/emulator-secrets-*.txt (credsync-emulator
// --record-secrets: JSON lines {kind, secret}). Every other file in LOG_DIR
// but the test runners' output (suite-*.out) is scanned: credsync-*.log (sidecar and CLI stderr and stdout, the files
// tests/e2e/node/sidecar.mjs and tests/e2e/python/harness.py keep) must be
// clean; the emulators' own logs (emulator-*.stderr.log) are scanned too.
//
// Each secret is looked for in several forms: as is, percent-encoded
// (encodeURIComponent and RFC 3986, as signed query strings use, and twice,
// as an RPC string-to-sign holds them), escaped as
// a JSON string, and in base64 and base64url at each of the three byte
// alignments (so it is found inside a larger encoded blob too). A form is
// found whole or as any fragment of at least FRAGMENT characters, except an
// OIDC JWT: its header and claims are not secret, so the whole token is
// looked for, and its signature (recorded on its own) by fragment.
//
// A finding names the file, the line, the kind of secret, the form and a
// SHA-256 prefix of the secret, never the secret. Exit 0 clean, 1 on a
// finding or when the scan would prove nothing (too few secrets or debug
// lines), 2 on bad usage.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const WINDOW = 16;
const STEP = 8;
// Any fragment this long contains one indexed window.
const FRAGMENT = WINDOW + STEP - 1;
const MIN_SECRET_LENGTH = 12;
const EXACT_ONLY_KINDS = new Set(['oidc_token']);

function usage(message) {
  process.stderr.write(`scan: ${message}\n` +
                       'usage: node scan.mjs LOG_DIR [--min-secrets N] [--min-lines L] [--min-debug-lines M]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { minSecrets: 1, minLines: 1, minDebugLines: 1 };
  const rest = [];
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--min-secrets') options.minSecrets = Number(argv[++i]);
    else if (argv[i] === '--min-debug-lines') options.minDebugLines = Number(argv[++i]);
    else if (argv[i] === '--min-lines') options.minLines = Number(argv[++i]);
    else rest.push(argv[i]);
  }
  if (rest.length !== 1) usage('one LOG_DIR');
  if (![options.minSecrets, options.minLines, options.minDebugLines].every(Number.isInteger)) {
    usage('--min-secrets, --min-lines and --min-debug-lines take whole numbers');
  }
  options.logDir = rest[0];
  return options;
}

export function fingerprint(secret) {
  return `sha256:${crypto.createHash('sha256').update(secret).digest('hex').slice(0, 12)}`;
}

// The base64 characters fully determined by `bytes` when they start `shift`
// bytes into a larger blob.
function base64Aligned(bytes, shift) {
  const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
  const first = Math.ceil((8 * shift) / 6);
  const end = Math.floor((8 * (shift + bytes.length)) / 6);
  return encoded.slice(first, end);
}

// Every form of `secret` worth looking for: [{form, text}].
export function forms(secret) {
  const out = new Map();
  const add = (form, text) => {
    if (text.length >= MIN_SECRET_LENGTH && ![...out.values()].includes(text)) out.set(form, text);
  };
  add('raw', secret);
  add('percent-encoded', encodeURIComponent(secret));
  add('percent-encoded (RFC 3986)', encodeURIComponent(secret)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`));
  add('percent-encoded (lowercase hex)', encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  // An RPC StringToSign (in a SignatureDoesNotMatch message) encodes values twice.
  add('percent-encoded twice', encodeURIComponent(encodeURIComponent(secret)));
  add('JSON-escaped', JSON.stringify(secret).slice(1, -1));
  const bytes = Buffer.from(secret, 'utf8');
  for (const shift of [0, 1, 2]) {
    const b64 = base64Aligned(bytes, shift);
    add(`base64 (offset ${shift})`, b64);
    add(`base64url (offset ${shift})`, b64.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...out].map(([form, text]) => ({ form, text }));
}

// Reads every recorded secret: Map secret -> kind.
export function loadSecrets(logDir) {
  const secrets = new Map();
  const files = fs.readdirSync(logDir).filter((name) => /^emulator-secrets-.*\.txt$/.test(name));
  for (const name of files) {
    for (const line of fs.readFileSync(path.join(logDir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const { kind, secret } = JSON.parse(line);
      if (typeof secret === 'string' && !secrets.has(secret)) secrets.set(secret, kind);
    }
  }
  return { secrets, files };
}

// window -> [{id, exactStart}]: exactStart is where the whole form must start
// relative to the window (exact-only kinds), or null for a fragment.
export function buildIndex(secrets) {
  const entries = [];
  const index = new Map();
  const put = (window, hit) => {
    const list = index.get(window);
    if (list) list.push(hit);
    else index.set(window, [hit]);
  };
  for (const [secret, kind] of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    for (const { form, text } of forms(secret)) {
      const id = entries.length;
      entries.push({ kind, form, text, fingerprint: fingerprint(secret) });
      if (text.length < WINDOW) {
        put(text.padEnd(WINDOW, '\0'), { id, exactStart: 0, short: true });
      } else if (EXACT_ONLY_KINDS.has(kind)) {
        // Anchored on its last window (the signature's tail is unique).
        put(text.slice(text.length - WINDOW), { id, exactStart: text.length - WINDOW });
      } else {
        for (let at = 0; at + WINDOW <= text.length; at += STEP) put(text.slice(at, at + WINDOW), { id, exactStart: null });
        put(text.slice(text.length - WINDOW), { id, exactStart: null });
      }
    }
  }
  return { entries, index };
}

// Findings in one line: [{entry, column, whole}].
export function scanLine(line, { entries, index }, shortEntries) {
  const found = new Map();
  for (let i = 0; i + WINDOW <= line.length; ++i) {
    const hits = index.get(line.slice(i, i + WINDOW));
    if (!hits) continue;
    for (const hit of hits) {
      if (found.has(hit.id)) continue;
      const entry = entries[hit.id];
      if (hit.exactStart !== null) {
        const start = i - hit.exactStart;
        if (start < 0 || !line.startsWith(entry.text, start)) continue;
        found.set(hit.id, { entry, column: start + 1, whole: true });
      } else {
        found.set(hit.id, { entry, column: i + 1, whole: line.includes(entry.text) });
      }
    }
  }
  for (const entry of shortEntries) {
    const column = line.indexOf(entry.text);
    if (column >= 0) found.set(`short:${entry.text}`, { entry, column: column + 1, whole: true });
  }
  return [...found.values()];
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const { secrets, files: secretFiles } = loadSecrets(options.logDir);
  const kinds = {};
  for (const kind of secrets.values()) kinds[kind] = (kinds[kind] || 0) + 1;
  const built = buildIndex(secrets);
  const shortEntries = built.entries.filter((e) => e.text.length < WINDOW);

  const logFiles = fs.readdirSync(options.logDir)
    .filter((name) => !/^emulator-secrets-/.test(name) && !/^suite-.*\.out$/.test(name))
    .sort();
  const totals = { credsync: { files: 0, lines: 0, debug: 0, bytes: 0 },
                   emulator: { files: 0, lines: 0, debug: 0, bytes: 0 },
                   other: { files: 0, lines: 0, debug: 0, bytes: 0 } };
  let stdoutFiles = 0;
  const findings = [];
  for (const name of logFiles) {
    const file = path.join(options.logDir, name);
    if (!fs.statSync(file).isFile()) continue;
    const group = name.startsWith('credsync-') ? 'credsync' : name.startsWith('emulator-') ? 'emulator' : 'other';
    if (name.endsWith('.stdout.log')) ++stdoutFiles;
    const text = fs.readFileSync(file, 'utf8');
    const t = totals[group];
    ++t.files;
    t.bytes += text.length;
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    lines.forEach((line, n) => {
      ++t.lines;
      if (line.includes('"level":"debug"')) ++t.debug;
      for (const f of scanLine(line, built, shortEntries)) findings.push({ file: name, line: n + 1, ...f });
    });
  }

  const summary = {
    secret_files: secretFiles.length,
    secrets: secrets.size,
    secrets_by_kind: kinds,
    forms_indexed: built.entries.length,
    fragment_length: FRAGMENT,
    scanned: totals,
    stdout_files: stdoutFiles,
  };
  process.stdout.write(`scan: ${JSON.stringify(summary)}\n`);

  let failed = false;
  if (secrets.size < options.minSecrets) {
    process.stdout.write(`scan: FAIL: only ${secrets.size} secrets were recorded, want at least ${options.minSecrets}: ` +
                         'did the emulators run with --record-secrets?\n');
    failed = true;
  }
  if (totals.credsync.lines < options.minLines) {
    process.stdout.write(`scan: FAIL: only ${totals.credsync.lines} lines of credsync were scanned, want at ` +
                         `least ${options.minLines}: did the suites keep their logs in the log dir?\n`);
    failed = true;
  }
  if (totals.credsync.debug < options.minDebugLines) {
    process.stdout.write(`scan: FAIL: only ${totals.credsync.debug} debug lines of credsync were scanned, want at ` +
                         `least ${options.minDebugLines}: did credsync run with --log-level debug?\n`);
    failed = true;
  }
  for (const f of findings) {
    process.stdout.write(`scan: LEAK: ${f.file}:${f.line}:${f.column}: ${f.entry.kind} ` +
                         `(${f.entry.fingerprint}, ${f.entry.form}, ${f.whole ? 'whole' : `a fragment of >= ${FRAGMENT} characters`})\n`);
    failed = true;
  }
  if (!failed) {
    process.stdout.write(`scan: OK: none of ${secrets.size} secrets in ${totals.credsync.lines} lines ` +
                         `(${totals.credsync.debug} at debug) of ${totals.credsync.files} credsync logs, nor in ` +
                         `${totals.emulator.lines} lines of ${totals.emulator.files} emulator logs\n`);
  }
  process.exit(failed ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) main();
