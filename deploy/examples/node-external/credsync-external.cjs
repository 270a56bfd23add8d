#!/usr/bin/env node
// The process_command of an Alibaba Cloud CLI profile in mode "External",
// for a Node.js app in a pod with credsync: it prints the AccessKey of one
// profile of credsync's credentials.ini in the form the official credential
// libraries read from such a command, with an `expiration` that makes them
// run it again `--refetch-within` seconds later. No credsync change, no app
// code: see docs/integration.md ("Node.js without code: an External CLI
// profile"), which gives the config.json and the volume mounts.
//
//   node credsync-external.cjs [--file /var/run/credsync/credentials.ini]
//                              [--profile default] [--refetch-within 60]
//
// Output (stdout, one line):
//   {"mode":"AK","access_key_id":"…","access_key_secret":"…","expiration":"2026-12-07T00:04:00Z"}
// expiration = now + 180 s + refetch_within: @alicloud/credentials runs the
// command again once 180 s or less remain (src/providers/external.ts,
// EXPIRATION_SLOT_SECONDS), i.e. refetch_within seconds after this run.
// Errors go to stderr (the SDK puts them into its error message) and never
// carry the secret; the exit status is then 1.
'use strict';

const fs = require('fs');

function fail(message) {
  process.stderr.write(`credsync-external: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const options = { file: '/var/run/credsync/credentials.ini', profile: 'default', refetchWithin: 60 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) fail(`${flag} needs a value`);
    if (flag === '--file') options.file = value;
    else if (flag === '--profile') options.profile = value;
    else if (flag === '--refetch-within') options.refetchWithin = Number(value);
    else fail(`unknown flag ${flag} (--file, --profile, --refetch-within)`);
  }
  if (!Number.isInteger(options.refetchWithin) || options.refetchWithin < 10 || options.refetchWithin > 600) {
    fail('--refetch-within must be whole seconds, 10 to 600');
  }
  return options;
}

// The keys of section [profile] of an INI file: `key = value` lines.
function readSection(text, profile) {
  let current = null;
  const keys = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.*)\]$/.exec(line);
    if (section) {
      current = section[1].trim();
      continue;
    }
    const eq = line.indexOf('=');
    if (current === profile && eq > 0) keys[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return keys;
}

const options = parseArgs(process.argv.slice(2));
let text;
try {
  text = fs.readFileSync(options.file, 'utf8');
} catch (err) {
  fail(`cannot read ${options.file}: ${err.code || err.message}`);
}
const keys = readSection(text, options.profile);
if (!keys.access_key_id || !keys.access_key_secret) {
  fail(`${options.file} has no access_key_id and access_key_secret in [${options.profile}]`);
}
const expiration = new Date((Math.floor(Date.now() / 1000) + 180 + options.refetchWithin) * 1000)
  .toISOString().replace(/\.\d{3}Z$/, 'Z');
process.stdout.write(`${JSON.stringify({
  mode: 'AK',
  access_key_id: keys.access_key_id,
  access_key_secret: keys.access_key_secret,
  expiration,
})}\n`);
