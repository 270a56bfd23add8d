// The local API end to end (issue 19, docs/local-api.md): the real credsync
// binary with `local_api` on a free loopback port, the path secret and the
// KMS Agent token in files, two RAM-credentials profiles (one the default)
// and one generic profile, against the emulator over TLS. Every request goes
// over a raw TCP socket so that the tests control each byte: the request
// target, the Host header, header case, bodies.
//
// Covered: the credentials URI's document for every profile and its errors;
// the Expiration rule per User-Agent (the Go margin of 180 s from
// aliyun/credentials-go credentials/providers/uri.go, the 15-minute stale
// window of aliyun/credentials-python provider/uri.py and aliyun/credentials-java
// URLCredentialProvider); a rotation visible on the next fetch and equal to
// credentials.ini; the SSRF rules; the KMS Agent-compatible API (paths and
// token headers of Alibaba's KMS Agent, as documented on
// https://www.alibabacloud.com/help/en/kms/key-management-service/developer-reference/using-the-kms-agent-to-obtain-secret-values);
// the last good key while KMS fails, 503 before the first key; hostile
// clients; and no secret in credsync's log.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_local_api).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startAttacker } from './attacker.mjs';
import { startEmulator } from './emulator.mjs';
import { connectControl } from './grpc_client.mjs';
import { httpGet, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig } from './sidecar.mjs';

const APP_SECRET = 'acs/ram/user/local-api-app';
const REPORTS_SECRET = 'acs/ram/user/local-api-reports';
const GENERIC_SECRET = 'api/local-api-key';
const GENERIC_VALUE = 'sk_live_local_api_0001';
const REFETCH_WITHIN_S = 60;

// User-Agents as the official credential libraries build them:
// aliyun/credentials-go credentials/internal/http/http.go (defaultUserAgent),
// aliyun/credentials-java CompatibleUrlConnClient (DEFAULT_USER_AGENT),
// aliyun/credentials-python utils/parameter_helper.py (get_new_request).
const GO_UA = 'AlibabaCloud (linux; amd64) Golang/1.22.5 Credentials/1.4.10 TeaDSL/1';
const JAVA_UA = 'AlibabaCloud (Linux; amd64) Java/17.0.9+9 Credentials/1.0.0 TeaDSL/1';
const PYTHON_UA = 'AlibabaCloud (Linux; x86_64) Python/3.11.2 Credentials/1.0.0 TeaDSL/1';

// A random secret of `bytes` bytes in base64url: [A-Za-z0-9_-], within the
// contract's [A-Za-z0-9._~-].
function randomSecret(bytes = 32) {
  return crypto.randomBytes(bytes).toString('base64url');
}

// A loopback port nobody listens on now.
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Every answer the listener gave (for the Cache-Control check at the end).
const answers = [];

// A chunked body's payload.
function dechunk(raw) {
  const parts = [];
  let at = 0;
  for (;;) {
    const end = raw.indexOf('\r\n', at);
    if (end < 0) break;
    const size = parseInt(raw.subarray(at, end).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(raw.subarray(end + 2, end + 2 + size));
    at = end + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

// Sends `data` (a request, byte for byte) on a fresh connection to
// 127.0.0.1:port and reads one answer. Resolves {status, headers (names
// lower-case), body (string), closed (the server closed the connection,
// known only with waitClose), error}; status is null when the connection
// ended with no answer. `head`: the answer has no body (HEAD).
function rawExchange(port, data, { timeoutMs = 10000, head = false, waitClose = false, what = '' } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    let parsed = null;
    let done = false;
    let closed = false;
    let error = null;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = parsed ? buffer.subarray(parsed.bodyStart) : Buffer.alloc(0);
      const body = parsed && /chunked/i.test(parsed.headers['transfer-encoding'] ?? '') ? dechunk(raw) : raw;
      const result = parsed
        ? { ...parsed, body: body.toString('utf8'), closed, error }
        : { status: null, headers: {}, body: '', closed, error };
      delete result.bodyStart;
      if (result.status !== null) answers.push({ what, status: result.status, headers: result.headers });
      resolve(result);
    };
    const timer = setTimeout(() => { error = error || new Error('timed out'); finish(); }, timeoutMs);
    const complete = () => {
      if (!parsed) return false;
      const have = buffer.length - parsed.bodyStart;
      if (head || parsed.status === 204 || parsed.status === 304) return true;
      if (/chunked/i.test(parsed.headers['transfer-encoding'] ?? '')) {
        return buffer.subarray(parsed.bodyStart).includes('0\r\n\r\n');
      }
      const length = parsed.headers['content-length'];
      return length !== undefined && have >= Number(length);
    };
    socket.on('connect', () => socket.write(data, () => {}));
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!parsed) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0].split(' ')[1]);
        const headers = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
        }
        parsed = { status, headers, bodyStart: end + 4 };
      }
      if (complete() && !waitClose) finish();
    });
    socket.on('error', (err) => { error = err; });
    socket.on('end', () => { closed = true; if (!waitClose || complete()) finish(); });
    socket.on('close', () => { closed = true; finish(); });
  });
}

// A request built from parts; `host: null` sends no Host header; `headers`
// is a list of [name, value] (sent as given: case, repeats); `body` is sent
// after the head as is (the caller sets its framing headers).
function request(port, target, { method = 'GET', host = `127.0.0.1:${port}`, headers = [], body = '',
                                 version = 'HTTP/1.1', close = true, ...options } = {}) {
  const lines = [`${method} ${target} ${version}`];
  if (host !== null) lines.push(`Host: ${host}`);
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  if (close) lines.push('Connection: close');
  const data = `${lines.join('\r\n')}\r\n\r\n${body}`;
  return rawExchange(port, data, { head: method === 'HEAD', what: `${method} ${target}`, ...options });
}

// The answer forbids caching. (Exactly one `Cache-Control: no-store` on
// every answer is checked once, at the end of the suite.)
function assertNoStore(answer) {
  assert.ok((answer.headers['cache-control'] ?? '').split(',').map((d) => d.trim()).includes('no-store'),
            `Cache-Control: ${answer.headers['cache-control']}`);
}

function json(answer) {
  try {
    return JSON.parse(answer.body);
  } catch {
    assert.fail(`not JSON (${answer.status}): ${answer.body}`);
  }
  return undefined;
}

// credentials.ini's sections: {section: {key: value}}.
function readIni(file) {
  const sections = {};
  let current = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const header = line.match(/^\s*\[([^\]]+)\]\s*$/);
    if (header) {
      current = sections[header[1]] = {};
    } else if (current && line.includes('=')) {
      const at = line.indexOf('=');
      current[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
  }
  return sections;
}

function epochSeconds(expiration) {
  assert.match(expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  return Date.parse(expiration) / 1000;
}

let emu;
before(async () => { emu = await startEmulator(); });
after(async () => { await emu?.stop(); });

describe('local API', () => {
  const ctx = {};
  // Every secret the suite handles, for the log scan at the end.
  const secrets = new Set();

  const uri = (profile, secret = ctx.pathSecret) => `/${secret}/v1/credentials/${profile}`;
  const get = (target, options) => request(ctx.port, target, options);
  const tokenHeader = (value = ctx.token, name = 'X-KMS-Token') => ({ headers: [[name, value]] });

  before(async () => {
    const world = await setUpRrsaWorld(emu, {
      name: 'localapi', secrets: [APP_SECRET, REPORTS_SECRET],
      readable: [APP_SECRET, REPORTS_SECRET, GENERIC_SECRET],
    });
    const generic = await emu.admin('POST', '/admin/secrets',
                                    { name: GENERIC_SECRET, type: 'Generic', data: GENERIC_VALUE });
    ctx.world = world;
    ctx.keys = { app: world.secrets[APP_SECRET], reports: world.secrets[REPORTS_SECRET] };
    ctx.genericVersion = generic.version_id;
    ctx.pathSecret = randomSecret(32);
    ctx.token = randomSecret(24);
    for (const s of [ctx.pathSecret, ctx.token, GENERIC_VALUE, ctx.keys.app.access_key_secret,
                     ctx.keys.reports.access_key_secret]) secrets.add(s);
    // Both files end in a newline, as `echo` or a Secret edited by hand leaves them.
    const pathSecretFile = path.join(world.dir, 'path-secret');
    const tokenFile = path.join(world.dir, 'kmstoken');
    fs.writeFileSync(pathSecretFile, `${ctx.pathSecret}\n`, { mode: 0o600 });
    fs.writeFileSync(tokenFile, `${ctx.token}\n`, { mode: 0o600 });
    ctx.port = await freePort();
    ctx.out = path.join(world.dir, 'out');
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [
        { name: 'app', secret_name: APP_SECRET, default: true },
        { name: 'reports', secret_name: REPORTS_SECRET },
        { name: 'apikey', secret_name: GENERIC_SECRET, kind: 'generic' },
      ],
      output: { directory: ctx.out },
      refresh: { interval: '3s', jitter: 0, rotation_jitter: '0s' },
      local_api: {
        listen: `127.0.0.1:${ctx.port}`,
        path_secret_file: pathSecretFile,
        refetch_within: `${REFETCH_WITHIN_S}s`,
        kms_agent_token_file: tokenFile,
      },
      log: { level: 'debug' },
    });
    ctx.sc = await startSidecar({ configFile, env: world.env, name: 'localapi' });
    ctx.api = connectControl(`unix:${await ctx.sc.listening('unix')}`);
    ctx.probe = await ctx.sc.listening('http');
    await waitForFile(path.join(ctx.out, 'credentials.ini'));
    await until(async () => (await ctx.api.getStatus()).response.ready, 'readiness');
    await until(async () => (await get(uri('app'))).status === 200, 'the local API answering', 30000);
  });

  after(async () => {
    ctx.api?.close();
    await ctx.sc?.stop();
  });

  describe('the credentials URI', () => {
    // Verifies the document for each RAM profile (and `default`, the
    // profile marked default): 200, JSON with exactly the five keys, the
    // profile's key, an empty SecurityToken, Content-Type JSON, no-store.
    it('answers the document for every RAM profile and default', async () => {
      for (const [profile, key] of [['app', ctx.keys.app], ['reports', ctx.keys.reports],
                                    ['default', ctx.keys.app]]) {
        const answer = await get(uri(profile));
        assert.equal(answer.status, 200, `${profile}: ${answer.status} ${answer.body}`);
        assert.match(answer.headers['content-type'] ?? '', /^application\/json\b/);
        assertNoStore(answer);
        const doc = json(answer);
        assert.deepEqual(Object.keys(doc).sort(),
                         ['AccessKeyId', 'AccessKeySecret', 'Code', 'Expiration', 'SecurityToken']);
        assert.equal(doc.Code, 'Success');
        assert.equal(doc.AccessKeyId, key.access_key_id, profile);
        assert.equal(doc.AccessKeySecret, key.access_key_secret, profile);
        assert.equal(doc.SecurityToken, '');
        epochSeconds(doc.Expiration);
      }
    });

    // Verifies each answer is exactly the key of credentials.ini's section.
    it('serves exactly the key in credentials.ini', async () => {
      const ini = readIni(path.join(ctx.out, 'credentials.ini'));
      for (const [profile, section] of [['app', 'app'], ['reports', 'reports'], ['default', 'default']]) {
        const doc = json(await get(uri(profile)));
        assert.equal(doc.AccessKeyId, ini[section].access_key_id, section);
        assert.equal(doc.AccessKeySecret, ini[section].access_key_secret, section);
      }
    });

    // Verifies a generic profile and an unknown one are 404 NotFound in
    // JSON (the secret being right), without a key in the body.
    it('answers 404 NotFound for a generic or unknown profile', async () => {
      for (const profile of ['apikey', 'nobody', 'App', 'defaults']) {
        const answer = await get(uri(profile));
        assert.equal(answer.status, 404, `${profile}: ${answer.status} ${answer.body}`);
        assert.equal(json(answer).Code, 'NotFound', profile);
        assert.equal(typeof json(answer).Message, 'string');
        assert.doesNotMatch(answer.body, new RegExp(`${GENERIC_VALUE}|${ctx.keys.app.access_key_secret}`));
      }
    });

    // Verifies Expiration = floor(now) + margin + refetch_within with a
    // margin of 180 s for the Go library's User-Agent and 900 s for Java,
    // Python and no User-Agent at all.
    it('sets Expiration by the asking SDK\'s margin', async () => {
      for (const [ua, margin] of [[GO_UA, 180], [JAVA_UA, 900], [PYTHON_UA, 900], [null, 900],
                                  ['curl/8.5.0', 900]]) {
        const earliest = Math.floor(Date.now() / 1000);
        const answer = await get(uri('reports'), { headers: ua === null ? [] : [['User-Agent', ua]] });
        const latest = Math.floor(Date.now() / 1000);
        assert.equal(answer.status, 200);
        const expiration = epochSeconds(json(answer).Expiration);
        const want = margin + REFETCH_WITHIN_S;
        assert.ok(expiration >= earliest + want && expiration <= latest + want,
                  `${ua}: Expiration ${json(answer).Expiration} is not now + ${want} s ` +
                  `(now between ${earliest} and ${latest})`);
      }
    });

    // Verifies a key rotated in KMS is what the next fetch answers once
    // credsync has it (a Refresh naming the old key), for the profile and
    // for `default`; the other profile keeps its key; the document equals
    // credentials.ini again.
    it('serves a rotated key on the next fetch', async () => {
      const before = json(await get(uri('app')));
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(APP_SECRET)}/rotate`, {});
      secrets.add(rotated.access_key_secret);
      const { response } = await ctx.api.refresh({ profile: 'app', failed_access_key_id: before.AccessKeyId });
      assert.equal(response.access_key_id, rotated.access_key_id);
      for (const profile of ['app', 'default']) {
        const doc = json(await get(uri(profile)));
        assert.equal(doc.AccessKeyId, rotated.access_key_id, profile);
        assert.equal(doc.AccessKeySecret, rotated.access_key_secret, profile);
      }
      assert.equal(json(await get(uri('reports'))).AccessKeyId, ctx.keys.reports.access_key_id);
      const ini = readIni(path.join(ctx.out, 'credentials.ini'));
      assert.equal(ini.app.access_key_secret, rotated.access_key_secret);
      ctx.keys.app = { ...rotated, version_id: rotated.version_id };
    });

    // Verifies a rotation that credsync finds by itself (its 3-second
    // schedule, no Refresh) reaches the URI too, with the file.
    it('serves a key the engine picked up by itself', async () => {
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(REPORTS_SECRET)}/rotate`, {});
      secrets.add(rotated.access_key_secret);
      await until(async () => json(await get(uri('reports'))).AccessKeyId === rotated.access_key_id,
                  'the rotated reports key on the URI', 20000, 100);
      const doc = json(await get(uri('reports')));
      assert.equal(doc.AccessKeySecret, rotated.access_key_secret);
      assert.equal(readIni(path.join(ctx.out, 'credentials.ini')).reports.access_key_id, rotated.access_key_id);
      ctx.keys.reports = rotated;
    });
  });

  describe('SSRF rules', () => {
    // Verifies a wrong, missing, shortened, lengthened or case-changed path
    // secret is 404 with an empty body, as is any other path.
    it('answers 404 with no body to any path but the exact one', async () => {
      const s = ctx.pathSecret;
      const flipped = s.replace(/[a-z]/, (c) => c.toUpperCase()) === s
        ? s.replace(/[A-Z]/, (c) => c.toLowerCase()) : s.replace(/[a-z]/, (c) => c.toUpperCase());
      const oneOff = `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
      const targets = [
        uri('app', randomSecret(32)),
        uri('app', oneOff),
        '//v1/credentials/app',
        uri('app', s.slice(0, -1)),
        uri('app', s.slice(1)),
        uri('app', s.slice(0, 16)),
        uri('app', `${s}x`),
        uri('app', `x${s}`),
        uri('app', flipped),
        `/${s}/v1/credentials/`,
        `/${s}/v1/credentials`,
        `/${s}/v1/credentials/app/`,
        `/${s}/v1/credentials/app/x`,
        `/${s}/v2/credentials/app`,
        `/${s}`,
        `/${s}/`,
        '/',
        '/healthz',
        '/metrics',
        `/x/${s}/v1/credentials/app`,
      ];
      for (const target of targets) {
        const answer = await get(target);
        assert.equal(answer.status, 404, `${target.replace(s, '<secret>')}: ${answer.status}`);
        assert.equal(answer.body, '', `${target.replace(s, '<secret>')}: a body`);
      }
      // Under /v1/ these are KMS Agent paths too (secretId "credentials/app"):
      // refused without the token, never a key.
      for (const target of ['/v1/credentials/app', `/v1/credentials/app/${s}`]) {
        const answer = await get(target);
        assert.ok([403, 404].includes(answer.status), `${target.replace(s, '<secret>')}: ${answer.status}`);
        assert.doesNotMatch(answer.body, /AccessKey/);
      }
    });

    // Verifies percent-encoding, dot segments, doubled slashes, NUL and
    // backslashes do not reach a key. When the secret itself is disguised
    // the answer is 404 with no body; when the secret is right and only the
    // profile name is odd, 404 NotFound (no such profile), never a key.
    it('does not decode or normalise its way to a key', async () => {
      const s = ctx.pathSecret;
      const pct = (text) => [...text].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join('');
      const disguisedSecret = [
        `/${pct(s)}/v1/credentials/app`,
        `/${pct(s[0])}${s.slice(1)}/v1/credentials/app`,
        `/${s.slice(0, -1)}${pct(s.slice(-1)).toLowerCase()}/v1/credentials/app`,
        `/${s}%2Fv1%2Fcredentials%2Fapp`,
        `/${s}/v1%2Fcredentials/app`,
        `/${s}/./v1/credentials/app`,
        `/${s}/v1/./credentials/app`,
        `/${s}/v1/credentials/../credentials/app`,
        `/x/../${s}/v1/credentials/app`,
        `/${s}//v1/credentials/app`,
        `//${s}/v1/credentials/app`,
        `/${s}%20/v1/credentials/app`,
        `/${s}%00/v1/credentials/app`,
      ];
      for (const target of disguisedSecret) {
        const answer = await get(target);
        assert.equal(answer.status, 404, `${target.replace(s, '<secret>')}: ${answer.status}`);
        assert.equal(answer.body, '', `${target.replace(s, '<secret>')}: a body`);
      }
      const oddProfile = [
        `/${s}/v1/credentials/%61pp`,
        `/${s}/v1/credentials/app%00`,
        `/${s}/v1/credentials/app%2500`,
        `/${s}/v1/credentials/app%20`,
        `/${s}/v1/credentials/app;x=1`,
        `/${s}/v1/credentials/..`,
        `/${s}/v1/credentials/.`,
      ];
      for (const target of oddProfile) {
        const answer = await get(target);
        assert.equal(answer.status, 404, `${target.replace(s, '<secret>')}: ${answer.status}`);
        assert.doesNotMatch(answer.body, /AccessKey/, target.replace(s, '<secret>'));
        if (answer.body !== '') assert.equal(json(answer).Code, 'NotFound');
      }
      // Not valid request targets at all: refused (400 or 404), never a key.
      for (const target of [`/${s}\\v1\\credentials\\app`, `/${s}/v1/credentials/app\x7f`]) {
        const answer = await get(target);
        assert.ok([400, 404].includes(answer.status), `${JSON.stringify(target.replace(s, '<secret>'))}: ${answer.status}`);
        assert.doesNotMatch(answer.body, /AccessKey/);
      }
    });

    // Verifies every forwarding or proxy header is refused with 403 and an
    // empty body, whatever its case, even with the right path. (A header line
    // with an empty value is not among them: cpp-httplib drops such a line
    // while parsing, and no proxy sends one: it names whom it forwards for.)
    it('refuses forwarded and proxied requests with 403', async () => {
      const headers = [
        ['X-Forwarded-For', '203.0.113.7'],
        ['x-forwarded-for', '127.0.0.1'],
        ['X-FORWARDED-FOR', '203.0.113.7'],
        ['Forwarded', 'for=203.0.113.7;proto=http'],
        ['forwarded', 'for=127.0.0.1'],
        ['X-Forwarded-Host', '127.0.0.1'],
        ['X-Forwarded-Proto', 'http'],
        ['X-Real-IP', '127.0.0.1'],
        ['x-real-ip', '203.0.113.7'],
        ['Via', '1.1 envoy'],
        ['VIA', '1.0 squid'],
        ['Proxy-Authorization', 'Basic Zm9vOmJhcg=='],
      ];
      for (const header of headers) {
        const answer = await get(uri('app'), { headers: [header] });
        assert.equal(answer.status, 403, `${header[0]}: ${JSON.stringify(header[1])}: ${answer.status}`);
        assert.equal(answer.body, '', `${header[0]}: a body`);
      }
      // The rules' order: a forwarding header is refused before the path
      // is looked at, and before the method.
      assert.equal((await get(uri('app', 'wrong'), { headers: [['Via', '1.1 x']] })).status, 403);
      assert.equal((await get(uri('app'), { method: 'POST', headers: [['X-Real-IP', '10.0.0.1']] })).status, 403);
    });

    // Verifies a Host that is not loopback is refused with 403 (DNS
    // rebinding, the metadata address), and loopback Hosts with or without
    // a port are served.
    it('serves loopback Hosts only', async () => {
      for (const host of ['evil.example', `evil.example:${ctx.port}`, '169.254.100.200',
                          '169.254.100.200:80', '100.100.100.200', '0.0.0.0', `10.0.0.1:${ctx.port}`,
                          'localhost.evil.example', '127.0.0.1.evil.example', `127.0.0.1.nip.io:${ctx.port}`,
                          '[::ffff:169.254.100.200]', '[fe80::1]']) {
        const answer = await get(uri('app'), { host });
        assert.equal(answer.status, 403, `Host: ${host}: ${answer.status}`);
        assert.equal(answer.body, '', `Host: ${host}: a body`);
      }
      for (const host of ['127.0.0.1', `127.0.0.1:${ctx.port}`, `localhost:${ctx.port}`, 'localhost',
                          `[::1]:${ctx.port}`, '[::1]', '127.0.0.2']) {
        const answer = await get(uri('app'), { host });
        assert.equal(answer.status, 200, `Host: ${host}: ${answer.status}`);
      }
    });

    // Verifies a request with two Host headers (one of them loopback) is
    // refused with 403.
    it('refuses a request with two Host headers', async () => {
      for (const extra of ['evil.example', '127.0.0.1']) {
        const two = await get(uri('app'), { headers: [['Host', extra]] });
        assert.equal(two.status, 403, `Host twice (${extra}): ${two.status}`);
        assert.doesNotMatch(two.body, /AccessKey/);
      }
    });

    // Verifies an absolute-form request target (what a client sends to a
    // proxy) is refused with 403, even naming loopback and the right path.
    it('refuses an absolute-form request target', async () => {
      for (const target of [`http://127.0.0.1:${ctx.port}${uri('app')}`, `http://localhost${uri('app')}`,
                            `http://evil.example${uri('app')}`]) {
        const answer = await get(target);
        assert.equal(answer.status, 403, `${target.replace(ctx.pathSecret, '<secret>')}: ${answer.status}`);
        assert.equal(answer.body, '');
      }
    });

    // Verifies methods other than GET are 405 with Allow: GET on the right
    // path, and 404 on a wrong one (the path is looked at first).
    it('allows GET only', async () => {
      for (const method of ['POST', 'PUT', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
        const answer = await get(uri('app'), { method, headers: [['Content-Length', '0']] });
        assert.equal(answer.status, 405, `${method}: ${answer.status}`);
        assert.equal(answer.headers.allow, 'GET', method);
        assert.doesNotMatch(answer.body, /AccessKey/, method);
      }
      assert.equal((await get(uri('app', 'wrong'), { method: 'POST', headers: [['Content-Length', '0']] })).status, 404);
    });

    // Verifies a request with a body, framed either way, is 413 and the
    // connection is closed.
    it('refuses a request body with 413 and closes', async () => {
      const cases = [
        { headers: [['Content-Length', '5']], body: 'hello' },
        { headers: [['Transfer-Encoding', 'chunked']], body: '5\r\nhello\r\n0\r\n\r\n' },
      ];
      for (const { headers, body } of cases) {
        const answer = await get(uri('app'), { headers, body, close: false, waitClose: true });
        assert.equal(answer.status, 413, `${headers[0][0]}: ${answer.status}`);
        assert.equal(answer.closed, true, `${headers[0][0]}: the connection stayed open`);
        assert.doesNotMatch(answer.body, /AccessKey/);
      }
    });
  });

  describe('the KMS Agent API', () => {
    const published = async (profile) => json(await get(uri(profile)));

    function assertSecretValue(answer, secretName) {
      assert.equal(answer.status, 200, `${secretName}: ${answer.status} ${answer.body}`);
      assert.match(answer.headers['content-type'] ?? '', /^application\/json\b/);
      assertNoStore(answer);
      const value = json(answer);
      assert.equal(value.SecretName, secretName);
      assert.equal(typeof value.VersionId, 'string');
      assert.notEqual(value.VersionId, '');
      assert.equal(typeof value.CreateTime, 'string');
      // The GetSecretValue reference shows a list; the 2016-01-20 JSON
      // answer nests it under VersionStage. Either carries ACSCurrent.
      const stages = Array.isArray(value.VersionStages) ? value.VersionStages : value.VersionStages?.VersionStage;
      assert.ok(Array.isArray(stages) && stages.includes('ACSCurrent'), JSON.stringify(value.VersionStages));
      return value;
    }

    // Verifies both paths answer the GetSecretValue shape of the published
    // version, with the token in X-KMS-Token or X-Vault-Token: a RAM
    // profile's SecretData is the key credsync serves on the URI.
    it('answers GetSecretValue on both paths with either token header', async () => {
      const doc = await published('app');
      const targets = [`/v1/${encodeURIComponent(APP_SECRET)}`,
                       `/secretsmanager/get?secretId=${encodeURIComponent(APP_SECRET)}`,
                       `/secretsmanager/get?secretId=${APP_SECRET}`];
      for (const target of targets) {
        for (const header of ['X-KMS-Token', 'X-Vault-Token', 'x-kms-token']) {
          const value = assertSecretValue(await get(target, tokenHeader(ctx.token, header)), APP_SECRET);
          assert.equal(value.SecretType, 'RAMCredentials');
          assert.equal(value.SecretDataType, 'text');
          const data = JSON.parse(value.SecretData);
          assert.equal(data.AccessKeyId, doc.AccessKeyId, `${target} ${header}`);
          assert.equal(data.AccessKeySecret, doc.AccessKeySecret, `${target} ${header}`);
          assert.equal(value.VersionId, ctx.keys.app.version_id);
        }
      }
    });

    // Verifies the path form as an app for Alibaba's agent writes it: a
    // secret name's slashes as they are (RAMCredentials secrets are all
    // named acs/ram/user/...). Go's net/http, which Alibaba's agent is
    // written with, and the AWS agent it follows (aws/aws-secretsmanager-agent
    // 4b1852d, parse.rs: the rest of the path after the prefix) both take
    // the rest of the path as the secret id.
    it('takes a secret name with slashes in the path form', async () => {
      for (const name of [APP_SECRET, GENERIC_SECRET]) {
        assertSecretValue(await get(`/v1/${name}`, tokenHeader()), name);
        assert.equal((await get(`/v1/${name}`)).status, 403, `${name} without the token`);
      }
    });

    // Verifies a generic profile's secret is served as stored.
    it('serves a generic profile\'s secret', async () => {
      const value = assertSecretValue(await get(`/v1/${encodeURIComponent(GENERIC_SECRET)}`, tokenHeader()),
                                      GENERIC_SECRET);
      assert.equal(value.SecretType, 'Generic');
      assert.equal(value.SecretData, GENERIC_VALUE);
      assert.equal(value.VersionId, ctx.genericVersion);
    });

    // Verifies a missing, empty, one-character-off, shorter, longer or
    // misplaced token is 403 without the secret, on both paths.
    it('refuses a missing or wrong token with 403', async () => {
      const t = ctx.token;
      const oneOff = `${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}`;
      const firstOff = `${t.startsWith('A') ? 'B' : 'A'}${t.slice(1)}`;
      const wrong = [
        [], [['X-KMS-Token', '']], [['X-KMS-Token', oneOff]], [['X-Vault-Token', firstOff]],
        [['X-KMS-Token', t.slice(0, -1)]], [['X-KMS-Token', `${t}x`]], [['X-KMS-Token', t.slice(0, 8)]],
        [['X-KMS-Token', `${t}${t}`]], [['X-KMS-Token', randomSecret(200)]],
        [['Authorization', `Bearer ${t}`]], [['X-Aws-Parameters-Secrets-Token', t]], [['X-KMS-Tokens', t]],
      ];
      for (const target of [`/v1/${encodeURIComponent(APP_SECRET)}`,
                            `/secretsmanager/get?secretId=${encodeURIComponent(APP_SECRET)}`]) {
        for (const headers of wrong) {
          const answer = await get(target, { headers });
          const what = `${target} ${JSON.stringify(headers.map(([n, v]) => [n, v.length]))}`;
          assert.equal(answer.status, 403, `${what}: ${answer.status}`);
          assert.doesNotMatch(answer.body, /AccessKey|SecretData/, what);
        }
      }
    });

    // Verifies a secretId that is no configured profile's secret is 404,
    // with the right token.
    it('answers 404 for a secret it does not serve', async () => {
      for (const target of ['/v1/acs/ram/user/someone-else', '/v1/nope',
                            `/secretsmanager/get?secretId=${encodeURIComponent('acs/ram/user/someone-else')}`,
                            `/v1/${APP_SECRET}x`, `/v1/${APP_SECRET.toUpperCase()}`]) {
        const answer = await get(target, tokenHeader());
        assert.equal(answer.status, 404, `${target}: ${answer.status}`);
        assert.doesNotMatch(answer.body, /AccessKey|SecretData/, target);
      }
    });

    // Verifies the SSRF rules hold for this API too: forwarding headers
    // and foreign Hosts are 403, other methods 405, with the right token.
    it('applies the SSRF rules to the KMS Agent paths', async () => {
      const target = `/v1/${encodeURIComponent(APP_SECRET)}`;
      assert.equal((await get(target, { headers: [['X-KMS-Token', ctx.token], ['X-Forwarded-For', '1.2.3.4']] })).status, 403);
      assert.equal((await get(target, { headers: [['X-KMS-Token', ctx.token], ['Via', '1.1 x']] })).status, 403);
      assert.equal((await get(target, { ...tokenHeader(), host: 'evil.example' })).status, 403);
      assert.equal((await get(`http://127.0.0.1:${ctx.port}${target}`, tokenHeader())).status, 403);
      const post = await get(target, { method: 'POST', headers: [['X-KMS-Token', ctx.token], ['Content-Length', '0']] });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET');
    });

    // Verifies a new generic version, once credsync has it, is what the
    // KMS Agent path answers next.
    it('serves a new version once credsync has it', async () => {
      const put = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(GENERIC_SECRET)}/versions`,
                                  { data: 'sk_live_local_api_0002' });
      secrets.add('sk_live_local_api_0002');
      await ctx.api.refresh({ profile: 'apikey' });
      const value = assertSecretValue(await get(`/v1/${encodeURIComponent(GENERIC_SECRET)}`, tokenHeader()),
                                      GENERIC_SECRET);
      assert.equal(value.SecretData, 'sk_live_local_api_0002');
      assert.equal(value.VersionId, put.version_id);
    });
  });

  describe('while KMS fails', () => {
    // Verifies the URI keeps serving the last good key while every
    // GetSecretValue fails (a rotation happened but cannot be fetched), and
    // serves the new key once KMS answers again.
    it('serves the last good key, then the new one', async () => {
      const before = json(await get(uri('reports')));
      // The fault first: the 3-second schedule must not fetch the new key.
      await emu.admin('POST', '/admin/faults', { action: 'GetSecretValue', kind: 'reset' });
      let rotated;
      try {
        rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(REPORTS_SECRET)}/rotate`, {});
        secrets.add(rotated.access_key_secret);
        await ctx.api.refresh({ profile: 'reports', failed_access_key_id: before.AccessKeyId })
          .then(() => {}, () => {});
        for (let i = 0; i < 3; i += 1) {
          const answer = await get(uri('reports'));
          assert.equal(answer.status, 200);
          assert.equal(json(answer).AccessKeyId, before.AccessKeyId);
          const kms = await get(`/v1/${encodeURIComponent(REPORTS_SECRET)}`, tokenHeader());
          assert.equal(kms.status, 200);
          assert.equal(JSON.parse(json(kms).SecretData).AccessKeyId, before.AccessKeyId);
        }
      } finally {
        await emu.admin('DELETE', '/admin/faults');
      }
      await until(async () => json(await get(uri('reports'))).AccessKeyId === rotated.access_key_id,
                  'the new key once KMS answers again', 30000, 100);
      ctx.keys.reports = rotated;
    });
  });

  describe('hostile clients', () => {
    // Verifies a 1 MiB header is refused (431, or the connection closed)
    // and the listener still answers afterwards.
    it('refuses a 1 MiB header', async () => {
      const answer = await get(uri('app'), { headers: [['X-Big', 'a'.repeat(1 << 20)]], waitClose: true,
                                             timeoutMs: 20000 });
      assert.ok(answer.status === null || answer.status === 431,
                `a 1 MiB header: ${answer.status} ${answer.error?.message ?? ''}`);
      assert.doesNotMatch(answer.body, /AccessKey/);
      assert.equal((await get(uri('app'))).status, 200);
    });

    // Verifies a normal request is answered within 2 s while 500 idle
    // connections are held open.
    it('answers while 500 idle connections are held', async () => {
      const attacker = await startAttacker('idle', `127.0.0.1:${ctx.port}`, 500);
      try {
        for (let i = 0; i < 5; i += 1) {
          const started = Date.now();
          const answer = await get(uri('app'), { timeoutMs: 2000 });
          assert.equal(answer.status, 200, `under 500 idle connections: ${answer.status} ${answer.error?.message ?? ''}`);
          assert.ok(Date.now() - started < 2000);
          await delay(100);
        }
      } finally {
        await attacker.stop();
      }
    });

    // Verifies a normal request is answered within 2 s while 200
    // connections each send a request a byte a second (slowloris).
    it('answers during a slowloris attack', async () => {
      const attacker = await startAttacker('trickle', `127.0.0.1:${ctx.port}`, 200);
      try {
        await delay(3000);
        for (let i = 0; i < 5; i += 1) {
          const answer = await get(uri('app'), { timeoutMs: 2000 });
          assert.equal(answer.status, 200, `during slowloris: ${answer.status} ${answer.error?.message ?? ''}`);
          await delay(200);
        }
      } finally {
        await attacker.stop();
      }
    });
  });

  describe('every answer and the log', () => {
    // Verifies the counter credsync_local_api_requests_total{api,code}
    // is exposed and has counted 200s and 404s.
    it('counts requests in credsync_local_api_requests_total', async () => {
      const { text } = await httpGet(ctx.probe, '/metrics');
      const samples = text.split('\n').filter((l) => l.startsWith('credsync_local_api_requests_total{'));
      assert.ok(samples.length > 0, 'no credsync_local_api_requests_total samples');
      const sum = (code) => samples.filter((l) => l.includes(`code="${code}"`))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      assert.ok(sum(200) > 10, samples.join('\n'));
      assert.ok(sum(404) > 10, samples.join('\n'));
      assert.ok(sum(403) > 10, samples.join('\n'));
    });

    // Verifies Cache-Control: no-store on every answer the listener gave
    // in this suite, whatever its status.
    it('sent Cache-Control: no-store on every answer', () => {
      assert.ok(answers.length > 100, `only ${answers.length} answers`);
      // Tallied by status and header value, so that one line names each fault.
      const wrong = {};
      for (const a of answers.filter((x) => x.headers['cache-control'] !== 'no-store')) {
        const key = `status ${a.status} with Cache-Control ${JSON.stringify(a.headers['cache-control'] ?? null)}`;
        wrong[key] = (wrong[key] ?? 0) + 1;
      }
      assert.deepEqual(wrong, {}, `of ${answers.length} answers`);
    });

    // Verifies credsync's whole output (stderr and stdout) carries neither
    // the path secret, nor the token, nor any key secret or generic value
    // of this suite, also not in a JSON- or percent-escaped form.
    it('never logged the path secret, the token or a key secret', () => {
      const stdoutFile = ctx.sc.stderrFile.replace(/\.stderr\.log$/, '.stdout.log');
      const text = ctx.sc.stderr() + (fs.existsSync(stdoutFile) ? fs.readFileSync(stdoutFile, 'utf8') : '');
      assert.ok(text.length > 0, 'credsync logged nothing');
      for (const secret of secrets) {
        for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret),
                                    secret.slice(0, 16), secret.slice(-16)])) {
          assert.ok(!text.includes(form), `the log holds a secret (${form.length} characters)`);
        }
      }
    });
  });
});

describe('local API before the first key', () => {
  // Verifies that with KMS unreachable from the start the listener answers
  // 503 NotReady with Retry-After: 1 for a profile not written yet (and
  // still 404 for anything else).
  it('answers 503 NotReady with Retry-After until a key is written', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'localapinotready', secrets: ['acs/ram/user/local-api-late'] });
    const pathSecret = randomSecret(32);
    const pathSecretFile = path.join(world.dir, 'path-secret');
    fs.writeFileSync(pathSecretFile, pathSecret, { mode: 0o600 });
    const port = await freePort();
    const deadPort = await freePort();
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [`127.0.0.1:${deadPort}`] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: 'acs/ram/user/local-api-late' }],
      output: { directory: path.join(world.dir, 'out') },
      local_api: { listen: `127.0.0.1:${port}`, path_secret_file: pathSecretFile },
    });
    const sc = await startSidecar({ configFile, env: world.env, name: 'localapinotready' });
    try {
      const answer = await until(async () => {
        const a = await request(port, `/${pathSecret}/v1/credentials/default`);
        return a.status === null ? null : a;
      }, 'the local API answering', 30000);
      assert.equal(answer.status, 503, `${answer.status} ${answer.body}`);
      assert.equal(answer.headers['retry-after'], '1');
      assertNoStore(answer);
      assert.equal(json(answer).Code, 'NotReady');
      assert.equal((await request(port, `/${randomSecret(32)}/v1/credentials/default`)).status, 404);
      assert.equal((await request(port, `/${pathSecret}/v1/credentials/nobody`)).status, 404);
      assert.ok(!sc.stderr().includes(pathSecret), 'the log holds the path secret');
    } finally {
      await sc.stop();
    }
  });
});

describe('local API with bad secrets', () => {
  // Verifies that a path secret or token that is missing or too weak stops
  // `credsync run` before anything is fetched or written: a non-zero exit,
  // one "cannot start" line naming the key and where the value came from,
  // never the value itself, and no credentials file.
  it('refuses to start, naming the key, writing nothing', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'localapibad', secrets: ['acs/ram/user/local-api-bad'] });
    const weak = 'short-but-secret-123';
    fs.writeFileSync(path.join(world.dir, 'weak-secret'), `${weak}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(world.dir, 'good-secret'), `${randomSecret(32)}\n`, { mode: 0o600 });
    const cases = [
      ['a short path secret', { path_secret_file: path.join(world.dir, 'weak-secret') }, {},
       'local_api.path_secret_file (', 'at least 32 characters'],
      ['a missing path secret file', { path_secret_file: path.join(world.dir, 'nope') }, {},
       'local_api.path_secret_file', 'No such file or directory'],
      ['an unset path secret variable', { path_secret_env: 'CREDSYNC_TEST_UNSET' }, {},
       'local_api.path_secret_env', 'CREDSYNC_TEST_UNSET is unset or empty'],
      ['a short token', { path_secret_file: path.join(world.dir, 'good-secret'), kms_agent_token_env: 'KMS_TOKEN' },
       { KMS_TOKEN: 'tooshort' }, 'local_api.kms_agent_token_env (KMS_TOKEN)', 'at least 16'],
    ];
    for (const [index, [label, localApi, extraEnv, names, says]] of cases.entries()) {
      const out = path.join(world.dir, `out-${label.replace(/ /g, '-')}`);
      const configFile = writeConfig(world.dir, {
        kms: { endpoints: [emu.endpoint] },
        tls: { ca_file: emu.caFile },
        profiles: [{ name: 'default', secret_name: 'acs/ram/user/local-api-bad' }],
        output: { directory: out },
        local_api: { listen: '127.0.0.1:0', ...localApi },
      });
      const sc = await startSidecar({ configFile, env: { ...world.env, ...extraEnv }, name: `localapibad-${index}` });
      try {
        const exit = await until(() => (sc.alive() ? null : sc.stop()), `${label}: credsync exiting`, 15000);
        assert.notEqual(exit.code, 0, `${label}: exit ${exit.code}`);
        const line = sc.logs().findLast((l) => l.msg === 'cannot start');
        assert.ok(line, `${label}: no "cannot start" line in\n${sc.stderr()}`);
        assert.ok(line.error.includes(names) && line.error.includes(says), `${label}: ${line.error}`);
        for (const value of [weak, 'tooshort']) {
          assert.ok(!sc.stderr().includes(value), `${label}: the log holds the rejected value`);
        }
        assert.ok(!fs.existsSync(path.join(out, 'credentials.ini')), `${label}: credentials.ini was written`);
      } finally {
        await sc.stop();
      }
    }
  });
});
