// The hygiene scanner's own test: it must find each recorded secret in each
// form it claims (so a clean scan means something), name the kind, file and
// line, never print the secret, and not flag what is not secret.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { fingerprint, forms } from './scan.mjs';

const scanner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scan.mjs');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-scan-test-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const random = (n) => crypto.randomBytes(n).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, n);
const akSecret = random(30);
const token = `CAIS${crypto.randomBytes(420).toString('base64')}`;  // has + / =
const jwtHeader = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9';
const jwtSignature = crypto.randomBytes(256).toString('base64url');
const jwt = `${jwtHeader}.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.${jwtSignature}`;

function logDir(name, logs) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'emulator-secrets-1.txt'), [
    { kind: 'secret_version_access_key_secret', secret: akSecret },
    { kind: 'sts_security_token', secret: token },
    { kind: 'oidc_token', secret: jwt },
    { kind: 'oidc_token_signature', secret: jwtSignature },
  ].map((r) => JSON.stringify(r)).join('\n') + '\n');
  for (const [file, text] of Object.entries(logs)) fs.writeFileSync(path.join(dir, file), text);
  return dir;
}

function scan(dir) {
  const result = spawnSync(process.execPath, [scanner, dir, '--min-secrets', '4', '--min-debug-lines', '1']);
  return { code: result.status, out: result.stdout.toString() + result.stderr.toString() };
}

const debugLine = '{"level":"debug","msg":"fetched","access_key_id":"LTAI5tabc"}\n';

describe('hygiene scanner', () => {
  // Verifies clean logs pass, with the JWT's (public) header in them.
  it('passes clean logs', () => {
    const { code, out } = scan(logDir('clean', {
      'credsync-a.stderr.log': debugLine + `{"level":"info","msg":"header ${jwtHeader}"}\n`,
    }));
    assert.equal(code, 0, out);
    assert.match(out, /scan: OK: none of 4 secrets/);
  });

  // Verifies each form of each secret is found, whole and as a fragment,
  // and that the report never holds the secret.
  it('finds every form, names kind, file and line, never prints the secret', () => {
    const cases = [];
    for (const [kind, secret] of [['secret_version_access_key_secret', akSecret], ['sts_security_token', token]]) {
      for (const { form, text } of forms(secret)) cases.push({ kind, form, text });
    }
    cases.push({ kind: 'oidc_token', form: 'raw', text: jwt });
    cases.push({ kind: 'oidc_token_signature', form: 'raw', text: jwtSignature.slice(40, 70) });  // a fragment
    cases.push({ kind: 'secret_version_access_key_secret', form: 'raw', text: akSecret.slice(3, 27) });  // 24 characters
    // base64 of "id:secret" (HTTP basic auth style): the secret at offset 10.
    cases.push({ kind: 'secret_version_access_key_secret', form: 'base64 (offset',
                 text: Buffer.from(`LTAI5tabc:${akSecret}`).toString('base64') });
    assert.ok(forms(token).length >= 6, forms(token).map((f) => f.form).join(', '));
    for (const [i, c] of cases.entries()) {
      const { code, out } = scan(logDir(`leak-${i}`, {
        'credsync-b.stderr.log': `${debugLine}{"level":"error","error":"prefix ${c.text} suffix"}\n`,
      }));
      assert.equal(code, 1, `${c.kind} ${c.form}: ${out}`);
      assert.match(out, new RegExp(`LEAK: credsync-b\\.stderr\\.log:2:\\d+: ${c.kind} `), `${c.kind} ${c.form}: ${out}`);
      assert.ok(out.includes(c.form), `${c.kind} ${c.form}: ${out}`);
      for (const secret of [akSecret, token, jwt, jwtSignature]) {
        assert.ok(!out.includes(secret.slice(0, 20)), `the report holds a secret: ${out}`);
      }
    }
    assert.match(scan(logDir('fp', { 'credsync-c.stdout.log': `${akSecret}\n${debugLine}` })).out,
                 new RegExp(fingerprint(akSecret)));
  });

  // Verifies a scan that would prove nothing fails: no secrets recorded, or
  // no debug lines.
  it('fails when the scan would be vacuous', () => {
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    fs.writeFileSync(path.join(empty, 'credsync-d.stderr.log'), debugLine);
    let { code, out } = scan(empty);
    assert.equal(code, 1);
    assert.match(out, /only 0 secrets were recorded/);
    ({ code, out } = scan(logDir('nodebug', { 'credsync-e.stderr.log': '{"level":"info"}\n' })));
    assert.equal(code, 1);
    assert.match(out, /only 0 debug lines/);
  });
});
