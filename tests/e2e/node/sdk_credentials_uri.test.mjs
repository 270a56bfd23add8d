// The credentials URI (issue 19) against the official SDKs' rules, through
// the real credsync listener (local_api, docs/local-api.md):
//
// - Node: @alicloud/credentials' own URI provider (the pinned 2.4.7, run
//   here) refuses credsync's document, because it rejects an empty
//   SecurityToken. The test pins that refusal; the day a release accepts the
//   document, it fails and says to update docs/integration.md.
// - Go, Python and Java cannot run here, so their parse and refresh rules
//   are encoded below as small functions, each with its source (repository,
//   file, commit), and checked against the document credsync serves for each
//   SDK's User-Agent. The same encoding of Node's rule is checked against the
//   real Node provider, so a wrong model shows.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_sdk_credentials_uri).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import { runCredsync, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig } from './sidecar.mjs';

const require = createRequire(import.meta.url);
const credentialsPackage = require('@alicloud/credentials');
const Credential = credentialsPackage.default;
const { URICredentialsProvider } = credentialsPackage;
const CREDENTIALS_VERSION = require('@alicloud/credentials/package.json').version;

const SECRET = 'acs/ram/user/uri-app';
const REFETCH_WITHIN_S = 60;  // local_api.refetch_within below

// The User-Agent each SDK sends on the URI request (the shape, with
// versions of the commits cited):
// - Go: aliyun/credentials-go credentials/internal/http/http.go, defaultUserAgent
//   "AlibabaCloud (%s; %s) Golang/%s Credentials/%s TeaDSL/1" (GOOS, GOARCH,
//   Go version, PACKAGE_VERSION 1.4.9 in doc.go), commit 9ac55b4041418ba3d0ac846cd69c000998d737b9.
// - Java: aliyun/credentials-java src/main/java/com/aliyun/credentials/http/CompatibleUrlConnClient.java,
//   DEFAULT_USER_AGENT "AlibabaCloud (%s; %s) Java/%s Credentials/%s TeaDSL/1" (os.name, os.arch,
//   java.runtime.version, sdk.credentials.version), commit b9b5c10487c6ac5f8cba00bbb6c228d429361a24.
// - Python: aliyun/credentials-python alibabacloud_credentials/utils/parameter_helper.py, get_new_request:
//   "AlibabaCloud ({system}; {machine}) Python/{version} Credentials/{__version__} TeaDSL/1",
//   commit 0e6d313679cd9cd7b3e72f74ce4b25a606d3ca84.
// - Node 2.4.7 (src/providers/http.ts) sets none: Node's http module sends no User-Agent.
const USER_AGENTS = {
  go: 'AlibabaCloud (linux; amd64) Golang/1.22.5 Credentials/1.4.9 TeaDSL/1',
  java: 'AlibabaCloud (Linux; amd64) Java/17.0.12+7 Credentials/1.0.6 TeaDSL/1',
  python: 'AlibabaCloud (Linux; x86_64) Python/3.11.2 Credentials/1.0.12 TeaDSL/1',
};

// ---------------------------------------------------------------------------
// Each SDK's acceptance rule for a URI answer ({status, body}), as read in
// its source. Each returns '' when the SDK takes the answer, else why not.

const EXPIRATION_LAYOUT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function parseJson(body) {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

// aliyun/credentials-go credentials/providers/uri.go (commit 9ac55b40...),
// URLCredentialsProvider.getCredentials: status must be 200; the body is
// unmarshalled into four *string fields (AccessKeyId, AccessKeySecret,
// SecurityToken, Expiration), any of them nil (missing or null) is an error;
// "Code" is not read. GetCredentials parses Expiration with
// time.Parse("2006-01-02T15:04:05Z").
export function goRule({ status, body }) {
  if (status !== 200) return `HTTP ${status}`;
  const doc = parseJson(body);
  if (doc === undefined) return 'json unmarshal fail';
  for (const key of ['AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration']) {
    if (doc[key] === undefined || doc[key] === null) return `${key} missing or null`;
    if (typeof doc[key] !== 'string') return `${key} is not a string (json unmarshal fail)`;
  }
  if (!EXPIRATION_LAYOUT.test(doc.Expiration)) return 'Expiration does not parse as 2006-01-02T15:04:05Z';
  return '';
}

// aliyun/credentials-python alibabacloud_credentials/provider/uri.py
// (commit 0e6d3136...), URLCredentialsProvider._refresh_credentials: status
// must be 200; dic.get('Code') must be "Success" and the four keys must be
// in the dict ('SecurityToken' in dic: an empty string is fine);
// Expiration goes through time.strptime(..., '%Y-%m-%dT%H:%M:%SZ').
export function pythonRule({ status, body }) {
  if (status !== 200) return `http_code=${status}`;
  const doc = parseJson(body);
  if (doc === undefined || doc === null || typeof doc !== 'object') return 'json.loads fails';
  if (doc.Code !== 'Success') return 'Code is not "Success"';
  for (const key of ['AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration']) {
    if (!(key in doc)) return `${key} not in the answer`;
  }
  if (typeof doc.Expiration !== 'string' || !EXPIRATION_LAYOUT.test(doc.Expiration)) {
    return 'Expiration does not match %Y-%m-%dT%H:%M:%SZ';
  }
  return '';
}

// aliyun/credentials-java src/main/java/com/aliyun/credentials/provider/URLCredentialProvider.java
// (commit b9b5c104...), getNewSessionCredentials: any 2xx; Gson into a Map;
// "Code" present and equal to "Success"; the four keys present (containsKey);
// Expiration through ParameterHelper.getUTCDate ("yyyy-MM-dd'T'HH:mm:ss'Z'", UTC).
export function javaRule({ status, body }) {
  if (status < 200 || status >= 300) return `HTTP ${status}`;
  const doc = parseJson(body);
  if (doc === undefined || doc === null || typeof doc !== 'object') return 'Gson fails';
  if (doc.Code !== 'Success') return 'Code is not "Success"';
  for (const key of ['AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration']) {
    if (!(key in doc)) return `no ${key}`;
  }
  if (typeof doc.Expiration !== 'string' || !EXPIRATION_LAYOUT.test(doc.Expiration)) {
    return "Expiration does not parse as yyyy-MM-dd'T'HH:mm:ss'Z'";
  }
  return '';
}

// @alicloud/credentials 2.4.7 src/providers/uri.ts, getCredentialsUri:
// status 200; JSON; AccessKeyId, AccessKeySecret and SecurityToken must be
// truthy, so an empty SecurityToken is refused. Checked below against the
// real provider.
export function nodeRule({ status, body }) {
  if (status !== 200) return `httpStatus: ${status}`;
  const doc = parseJson(body);
  if (doc === undefined) return 'json parse failed';
  if (!doc || !doc.AccessKeyId || !doc.AccessKeySecret || !doc.SecurityToken) {
    return 'AccessKeyId, AccessKeySecret or SecurityToken missing or empty';
  }
  return '';
}

// ---------------------------------------------------------------------------
// Each SDK's refresh rule: given the Expiration it read (epoch seconds) and
// the time it read it, when does it ask the URI again?

// Go, uri.go needUpdateCredential: expirationTimestamp - now <= 180.
export function goNextFetch(expiration, fetchedAt) {
  return Math.max(fetchedAt, expiration - 180);
}

// Python, uri.py _get_stale_time: expiration - 15 * 60; provider/refreshable.py
// RefreshCachedSupplier._handle_fetched_success: a value already stale when
// fetched (now >= stale_time, but before expiration) gets stale_time = now,
// so the next call fetches again: one URI request per API call.
// Java, SessionCredentialsProvider.getStaleTime (expiration -
// RefreshCachedSupplier.STALE_TIME, 15 min) and
// RefreshCachedSupplier.handleFetchedSuccess: the same rule, in ms.
export function staleWindowNextFetch(expiration, fetchedAt) {
  const stale = expiration - 15 * 60;
  return fetchedAt >= stale ? fetchedAt : stale;
}

const NEXT_FETCH = { go: goNextFetch, python: staleWindowNextFetch, java: staleWindowNextFetch };
const RULES = { go: goRule, python: pythonRule, java: javaRule };

// ---------------------------------------------------------------------------

// GET on the listener with exactly the given headers: {status, headers, body}.
function get(url, headers = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: Number(u.port), path: u.pathname, method: 'GET', agent: false,
      headers, setHost: !('Host' in headers), timeout: 10000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${u.pathname}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const epochSeconds = (expiration) => Date.parse(expiration) / 1000;

// A message about an SDK error with the key secret and the path secret
// taken out: Node's URI error carries the whole document.
function redact(text, ...secrets) {
  let out = String(text);
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}

// Runs `fn` with process.env holding only `env` among ALIBABA_CLOUD_* (and
// HOME), restoring it afterwards: the SDK reads the environment when a
// provider is built.
async function withEnv(env, fn) {
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('ALIBABA_CLOUD_')) delete process.env[name];
  }
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const name of Object.keys(process.env)) delete process.env[name];
    Object.assign(process.env, saved);
  }
}

let emu;
let sc;
const ctx = {};

before(async () => {
  emu = await startEmulator();
  const world = await setUpRrsaWorld(emu, { name: 'uri', secrets: [SECRET] });
  const out = path.join(world.dir, 'out');
  const pathSecret = crypto.randomBytes(32).toString('base64url');
  const secretFile = path.join(world.dir, 'path-secret');
  fs.writeFileSync(secretFile, `${pathSecret}\n`, { mode: 0o600 });
  const port = await freePort();
  const configFile = writeConfig(world.dir, {
    kms: { endpoints: [emu.endpoint] },
    tls: { ca_file: emu.caFile },
    profiles: [{ name: 'default', secret_name: SECRET }],
    output: { directory: out },
    refresh: { interval: '1h', jitter: 0, rotation_jitter: '0s' },
    local_api: {
      listen: `127.0.0.1:${port}`,
      path_secret_file: secretFile,
      refetch_within: `${REFETCH_WITHIN_S}s`,
    },
  });
  sc = await startSidecar({ configFile, env: world.env, name: 'uri' });
  const first = world.secrets[SECRET];
  await waitForFile(path.join(out, 'credentials.ini'), (c) => c.includes(first.access_key_id));
  Object.assign(ctx, {
    world, first, pathSecret, socket: await sc.listening('unix'),
    uri: `http://127.0.0.1:${port}/${pathSecret}/v1/credentials/default`,
  });
  // The listener answers 503 NotReady until the profile is published.
  await until(async () => {
    try {
      return (await get(ctx.uri)).status === 200;
    } catch {
      return false;
    }
  }, 'a 200 from the credentials URI', 30000, 100);
});

after(async () => {
  await sc?.stop();
  await emu?.stop();
});

describe('the official Node provider and credsync\'s credentials URI', () => {
  // Verifies @alicloud/credentials' URICredentialsProvider, pointed at
  // credsync, refuses the document for its empty SecurityToken, with the
  // error 2.4.7 throws; and that the model of Node's rule agrees.
  it('URICredentialsProvider refuses the document (empty SecurityToken)', async () => {
    const answer = await get(ctx.uri);
    assert.equal(answer.status, 200);
    const doc = JSON.parse(answer.body);
    assert.equal(doc.SecurityToken, '', 'credsync serves a permanent AccessKey with an empty token');
    assert.equal(doc.AccessKeyId, ctx.first.access_key_id);
    assert.notEqual(nodeRule(answer), '', 'the model of Node\'s rule refuses the document');

    const provider = URICredentialsProvider.builder().withCredentialsURI(ctx.uri).build();
    let accepted;
    let refusal;
    try {
      accepted = await provider.getCredentials();
    } catch (err) {
      refusal = err;
    }
    if (accepted) {
      assert.fail(`@alicloud/credentials ${CREDENTIALS_VERSION} now ACCEPTS credsync's credentials URI ` +
                  'document (empty SecurityToken). Node apps can use ALIBABA_CLOUD_CREDENTIALS_URI: update ' +
                  'docs/integration.md (the "No code at all" section and the Node routes), then this test.');
    }
    const message = redact(refusal.message, doc.AccessKeySecret, ctx.pathSecret);
    assert.ok(message.startsWith('error retrieving credentials from credentialsURI result: '),
              `@alicloud/credentials ${CREDENTIALS_VERSION} refused the document with another error ` +
              `than 2.4.7's; check docs/integration.md still holds: ${message}`);
    // The error carries the whole document, the key secret included: one
    // more reason for Node apps to stay off the URI until the SDK changes.
    assert.ok(refusal.message.includes(doc.AccessKeySecret));
  });

  // Verifies the default chain (new Credential() with only
  // ALIBABA_CLOUD_CREDENTIALS_URI, ECS metadata and the CLI profile off,
  // an empty home) ends on the URI provider and fails with its refusal.
  it('the default chain with ALIBABA_CLOUD_CREDENTIALS_URI fails the same way', async () => {
    const home = fs.mkdtempSync(path.join(ctx.world.dir, 'home-'));
    const keySecret = JSON.parse((await get(ctx.uri)).body).AccessKeySecret;
    await withEnv({
      HOME: home,
      ALIBABA_CLOUD_CREDENTIALS_URI: ctx.uri,
      ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
      ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true',
    }, async () => {
      const credential = new Credential();
      let accepted;
      let refusal;
      try {
        accepted = await credential.getCredential();
      } catch (err) {
        refusal = err;
      }
      if (accepted) {
        assert.fail(`@alicloud/credentials ${CREDENTIALS_VERSION}'s default chain now takes credsync's ` +
                    `credentials URI (provider ${accepted.providerName}): update docs/integration.md, then this test.`);
      }
      const message = redact(refusal.message, keySecret, ctx.pathSecret);
      assert.match(message, /^unable to get credentials from any of the providers in the chain: /, message);
      assert.match(message, /error retrieving credentials from credentialsURI result: /, message);
    });
  });
});

describe('credsync\'s document under the Go, Python and Java rules', () => {
  // Verifies the document passes each SDK's parse rule when fetched with
  // that SDK's User-Agent (Python's Host carries no port), and carries the
  // key in the file.
  it('each SDK takes the document', async () => {
    const [host] = new URL(ctx.uri).host.split(':');
    for (const [sdk, userAgent] of Object.entries(USER_AGENTS)) {
      const headers = { 'User-Agent': userAgent };
      // uri.py: tea_request.headers['host'] = urlparse(uri).hostname (no port).
      if (sdk === 'python') headers.Host = host;
      const answer = await get(ctx.uri, headers);
      assert.equal(answer.status, 200, `${sdk}: HTTP ${answer.status}`);
      // Exactly one no-store (Node would join a repeated header with ", ").
      assert.equal(answer.headers['cache-control'], 'no-store', sdk);
      assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(RULES[sdk](answer), '', `${sdk} would refuse the document: ${RULES[sdk](answer)}`);
      const doc = JSON.parse(answer.body);
      assert.equal(doc.Code, 'Success');
      assert.equal(doc.AccessKeyId, ctx.first.access_key_id, sdk);
      assert.equal(doc.SecurityToken, '', sdk);
    }
  });

  // Verifies the Expiration arithmetic: Go's User-Agent gets now + 180 s +
  // refetch_within, every other one (Java, Python, none) now + 900 s +
  // refetch_within, so each SDK asks again refetch_within after a fetch;
  // and shows why one Expiration cannot serve both families.
  it('Expiration: each SDK fetches again refetch_within later', async () => {
    const cases = [
      { sdk: 'go', headers: { 'User-Agent': USER_AGENTS.go }, margin: 180 },
      { sdk: 'java', headers: { 'User-Agent': USER_AGENTS.java }, margin: 900 },
      { sdk: 'python', headers: { 'User-Agent': USER_AGENTS.python }, margin: 900 },
      { sdk: 'unknown (no User-Agent)', headers: {}, margin: 900 },
    ];
    for (const { sdk, headers, margin } of cases) {
      const before = Math.floor(Date.now() / 1000);
      const answer = await get(ctx.uri, headers);
      const after = Math.ceil(Date.now() / 1000);
      assert.equal(answer.status, 200, sdk);
      const doc = JSON.parse(answer.body);
      assert.match(doc.Expiration, EXPIRATION_LAYOUT, sdk);
      const expiration = epochSeconds(doc.Expiration);
      // Expiration = floor(now) + margin + refetch_within, now in [before, after].
      assert.ok(expiration >= before + margin + REFETCH_WITHIN_S && expiration <= after + margin + REFETCH_WITHIN_S,
                `${sdk}: Expiration ${doc.Expiration} is not now + ${margin} + ${REFETCH_WITHIN_S} s ` +
                `(now in [${before}, ${after}])`);
      const fetchedAt = expiration - margin - REFETCH_WITHIN_S;  // credsync's own now
      const next = NEXT_FETCH[sdk]?.(expiration, fetchedAt);
      if (next !== undefined) {
        assert.equal(next - fetchedAt, REFETCH_WITHIN_S, `${sdk} fetches again ${next - fetchedAt} s later`);
      }
    }

    // One Expiration for all would not do: the Go document read by the
    // 15-minute rule is stale at once (a URI request on every API call),
    // and the 900 s document read by Go's 180 s rule lasts 13 minutes.
    const t = 1_800_000_000;
    const goExpiration = t + 180 + REFETCH_WITHIN_S;
    const otherExpiration = t + 900 + REFETCH_WITHIN_S;
    assert.equal(staleWindowNextFetch(goExpiration, t), t, 'Python/Java on a 180 s margin: stale at once');
    assert.equal(goNextFetch(otherExpiration, t) - t, 900 + REFETCH_WITHIN_S - 180, 'Go on a 900 s margin');
    assert.equal(goNextFetch(otherExpiration, t) - t, 780);
  });

  // Verifies a rotated key is in the very next document, for every
  // User-Agent: what each SDK reads at its next fetch.
  it('a rotation is in the next document', async () => {
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
    const cli = await runCredsync(['refresh', '--profile', 'default', '--failed-key-id', ctx.first.access_key_id,
                                   '--socket', ctx.socket], { name: 'uri-refresh' });
    assert.equal(cli.code, 0, cli.stderr);
    for (const headers of [{ 'User-Agent': USER_AGENTS.go }, { 'User-Agent': USER_AGENTS.java }, {}]) {
      const doc = JSON.parse((await get(ctx.uri, headers)).body);
      assert.equal(doc.AccessKeyId, rotated.access_key_id);
    }
  });
});
