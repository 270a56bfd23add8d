// The app container of the credentials URI pod tests (issue 19): what an app
// built on the official Go credentials library does with
// ALIBABA_CLOUD_CREDENTIALS_URI, and nothing more, in one small Node file.
//
// Why not the SDK itself: no Go, Python or Java toolchain or package proxy is
// available to these tests, and Node's @alicloud/credentials (2.4.7) refuses a
// URI answer whose SecurityToken is empty, which a permanent AccessKey has
// (docs/integration.md). So this client carries over, as facts, what
// aliyun/credentials-go does at commit 9ac55b4041418ba3d0ac846cd69c000998d737b9:
//
// - credentials/providers/default.go (NewDefaultCredentialsProvider): the URI
//   provider is the last of the default chain, after the environment AccessKey
//   (ALIBABA_CLOUD_ACCESS_KEY_ID), RRSA (ALIBABA_CLOUD_ROLE_ARN,
//   ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE), the CLI
//   profile (unless ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true), the credentials
//   file (ALIBABA_CLOUD_CREDENTIALS_FILE, else ~/.alibabacloud/credentials.ini)
//   and ECS instance metadata (unless ALIBABA_CLOUD_ECS_METADATA_DISABLED=true,
//   providers/ecs_ram_role.go Build). The app does not run those providers; it
//   reports, in its first line, the ones whose inputs its environment holds and
//   that would answer before the URI ("shadowedBy"), so a test can see that the
//   URI is what a Go app of this pod would really use.
// - credentials/providers/uri.go (URLCredentialsProvider):
//   the URL is ALIBABA_CLOUD_CREDENTIALS_URI; getCredentials does one GET, with
//   a 5 s connect and 10 s read timeout; a status other than 200 is an error
//   carrying the body; the JSON body must have AccessKeyId, AccessKeySecret,
//   SecurityToken and Expiration, each present and not null (pointers to
//   string: an empty string is accepted); GetCredentials fetches when it has
//   nothing yet or when expirationTimestamp - time.Now().Unix() <= 180, stores
//   the answer, then parses Expiration with the layout "2006-01-02T15:04:05Z"
//   (an error then is returned, the answer already stored); the provider name
//   is "credential_uri".
// - credentials/internal/http/http.go (Do): the request carries
//   User-Agent "AlibabaCloud (<GOOS>; <GOARCH>) Golang/<go version>
//   Credentials/<PACKAGE_VERSION> TeaDSL/1" (doc.go: PACKAGE_VERSION "1.4.9");
//   the client is Go's net/http, which also sends Accept-Encoding: gzip and
//   decodes a gzip answer. Go's encoding/json matches keys exactly first, then
//   without regard to case, and a non-string value for a string field is an
//   error.
//
// Like an app, it uses the key: every CALL_INTERVAL_MS it asks the provider
// for the credentials (the cached ones unless a fetch is due) and, with
// TARGET_ENDPOINT (host:port of credsync-emulator), calls ECS DescribeRegions
// signed with them through @alicloud/openapi-core, so the emulator checks the
// secret too; without it, using the key is printing its id. One JSON line per
// event, `at` in epoch milliseconds:
//   {"event":"start","uri":<URI without its path>,"shadowedBy":[...]}
//   {"event":"fetch","at":T,"status":200,"key":ID,"expiration":E}   each GET
//   {"event":"fetch","at":T,"status":S,"error":M}                     a failed GET
//   {"event":"use","at":T,"started":S,"key":ID}  one use (a call that succeeded) ended at T
//   {"event":"failed","at":T,"message":M}     GetCredentials or the call failed
// and exits 0 on SIGTERM. The secret is never printed.
//
// Environment: ALIBABA_CLOUD_CREDENTIALS_URI, CALL_INTERVAL_MS (default 250),
// TARGET_ENDPOINT (optional) and NODE_EXTRA_CA_CERTS (the emulator's CA, with
// TARGET_ENDPOINT).

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import zlib from 'node:zlib';

// strings.Trim(runtime.Version(), "go") of the building toolchain: any release will do (go.mod asks
// for go 1.14 or later); credsync tells a Go client by "Golang/" alone.
const GO_VERSION = '1.22.5';
const PACKAGE_VERSION = '1.4.9';     // credentials-go doc.go at the commit above
const USER_AGENT = `AlibabaCloud (linux; amd64) Golang/${GO_VERSION} Credentials/${PACKAGE_VERSION} TeaDSL/1`;
const CONNECT_TIMEOUT_MS = 5000;
const READ_TIMEOUT_MS = 10000;

const emit = (event) => process.stdout.write(`${JSON.stringify({ ...event, at: event.at ?? Date.now() })}\n`);

// The default chain's providers before the URI whose inputs are here
// (default.go), in chain order.
function shadowingProviders(env) {
  const found = [];
  if (env.ALIBABA_CLOUD_ACCESS_KEY_ID) found.push('env (ALIBABA_CLOUD_ACCESS_KEY_ID)');
  if (env.ALIBABA_CLOUD_ROLE_ARN || env.ALIBABA_CLOUD_OIDC_PROVIDER_ARN || env.ALIBABA_CLOUD_OIDC_TOKEN_FILE) {
    found.push('oidc_role_arn (ALIBABA_CLOUD_ROLE_ARN / OIDC variables)');
  }
  const home = env.HOME ?? '/';
  if ((env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED ?? '').toLowerCase() !== 'true') {
    const cli = env.ALIBABA_CLOUD_CONFIG_FILE || path.join(home, '.aliyun', 'config.json');
    if (fs.existsSync(cli)) found.push(`cli_profile (${cli})`);
  }
  if (env.ALIBABA_CLOUD_CREDENTIALS_FILE) found.push('profile (ALIBABA_CLOUD_CREDENTIALS_FILE)');
  else if (fs.existsSync(path.join(home, '.alibabacloud', 'credentials.ini'))) found.push('profile (~/.alibabacloud)');
  if ((env.ALIBABA_CLOUD_ECS_METADATA_DISABLED ?? '').toLowerCase() !== 'true') {
    found.push('ecs_ram_role (ALIBABA_CLOUD_ECS_METADATA_DISABLED is not true)');
  }
  return found;
}

// One GET as credentials-go's http.Do sends it; resolves {status, body}.
function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { 'User-Agent': USER_AGENT, 'Accept-Encoding': 'gzip' }, agent: false });
    const connectTimer = setTimeout(() => req.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
    req.on('socket', (s) => s.once('connect', () => clearTimeout(connectTimer)));
    const readTimer = setTimeout(() => req.destroy(new Error('timeout')), CONNECT_TIMEOUT_MS + READ_TIMEOUT_MS);
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(readTimer);
        let body = Buffer.concat(chunks);
        try {
          if ((res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') body = zlib.gunzipSync(body);
        } catch (err) {
          reject(err);
          return;
        }
        resolve({ status: res.statusCode, body: body.toString('utf8') });
      });
      res.on('error', (err) => { clearTimeout(readTimer); reject(err); });
    });
    req.on('error', (err) => { clearTimeout(connectTimer); clearTimeout(readTimer); reject(err); });
  });
}

// encoding/json into a struct of *string fields: exact key first, else a
// case-insensitive one; null leaves the pointer nil; another type is an error.
function goStringField(object, name) {
  let key = Object.prototype.hasOwnProperty.call(object, name) ? name : undefined;
  if (key === undefined) key = Object.keys(object).find((k) => k.toLowerCase() === name.toLowerCase());
  if (key === undefined || object[key] === null) return null;
  if (typeof object[key] !== 'string') {
    throw new Error(`json: cannot unmarshal ${typeof object[key]} into Go struct field urlResponse.${name} of type string`);
  }
  return object[key];
}

// time.Parse("2006-01-02T15:04:05Z", s): the literal Z, an optional
// fractional second after the seconds (Go accepts one when parsing).
function parseGoTime(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?Z$/.exec(s);
  if (!m) throw new Error(`parsing time "${s}" as "2006-01-02T15:04:05Z": cannot parse`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) {
    throw new Error(`parsing time "${s}": out of range`);
  }
  return Date.UTC(y, mo - 1, d, h, mi, se) / 1000;
}

class UriProvider {
  constructor(url) {
    if (!url) throw new Error('the url is empty');
    this.url = url;
    this.session = null;
    this.expirationTimestamp = 0;
  }

  needUpdate() {
    if (this.expirationTimestamp === 0) return true;
    return this.expirationTimestamp - Math.floor(Date.now() / 1000) <= 180;
  }

  async fetch() {
    const at = Date.now();
    let res;
    try {
      res = await get(this.url);
    } catch (err) {
      emit({ event: 'fetch', at, status: null, error: err.message });
      throw err;
    }
    if (res.status !== 200) {
      emit({ event: 'fetch', at, status: res.status, error: res.body.slice(0, 200) });
      throw new Error(`get credentials from the URI failed: ${res.status} ${res.body.slice(0, 200)}`);
    }
    let fields;
    try {
      const doc = JSON.parse(res.body);
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
      fields = Object.fromEntries(['AccessKeyId', 'AccessKeySecret', 'SecurityToken', 'Expiration']
        .map((n) => [n, goStringField(doc, n)]));
    } catch (err) {
      emit({ event: 'fetch', at, status: 200, error: `json unmarshal fail: ${err.message}` });
      throw err;
    }
    if (Object.values(fields).some((v) => v === null)) {
      const missing = Object.keys(fields).filter((k) => fields[k] === null);
      emit({ event: 'fetch', at, status: 200, error: `refresh credentials failed: no ${missing.join(', ')}` });
      throw new Error(`refresh credentials from the URI failed: no ${missing.join(', ')}`);
    }
    emit({ event: 'fetch', at, status: 200, key: fields.AccessKeyId, expiration: fields.Expiration });
    return fields;
  }

  async getCredentials() {
    if (this.session === null || this.needUpdate()) {
      this.session = await this.fetch();
      this.expirationTimestamp = parseGoTime(this.session.Expiration);
    }
    return {
      accessKeyId: this.session.AccessKeyId,
      accessKeySecret: this.session.AccessKeySecret,
      securityToken: this.session.SecurityToken,
      providerName: 'credential_uri',
    };
  }
}

const uri = process.env.ALIBABA_CLOUD_CREDENTIALS_URI;
const interval = Number(process.env.CALL_INTERVAL_MS ?? 250);
const endpoint = process.env.TARGET_ENDPOINT;
if (!uri) {
  console.error('uri_app: ALIBABA_CLOUD_CREDENTIALS_URI is not set');
  process.exit(2);
}
let stopping = false;
process.on('SIGTERM', () => { stopping = true; });

let shownUri;
try {
  const u = new URL(uri);
  shownUri = `${u.protocol}//${u.host}/…${u.pathname.slice(u.pathname.indexOf('/v1/'))}`;
} catch {
  shownUri = '(not a URL)';
}
emit({ event: 'start', uri: shownUri, userAgent: USER_AGENT, shadowedBy: shadowingProviders(process.env) });

const provider = new UriProvider(uri);
// One use of the credentials: resolves the AccessKey id it used.
let use = async () => (await provider.getCredentials()).accessKeyId;
if (endpoint) {
  const { callRpc, ECS_VERSION, makeOpenApiClient } = await import('../node/sdk_clients.mjs');
  // openapi-core asks `credential.getCredential()` for every request and
  // signs it with what it gets: that key is the one used.
  let signedWith = null;
  const credential = {
    getCredential: async () => {
      const c = await provider.getCredentials();
      signedWith = c.accessKeyId;
      return { ...c, type: 'access_key' };
    },
  };
  const client = makeOpenApiClient(endpoint, { credential });
  use = async () => {
    signedWith = null;
    const body = await callRpc(client, 'DescribeRegions', ECS_VERSION, {});
    if (!(body.Regions?.Region?.length > 0)) throw new Error(`DescribeRegions answered ${JSON.stringify(body)}`);
    return signedWith;
  };
}

while (!stopping) {
  try {
    const started = Date.now();
    const key = await use();
    emit({ event: 'use', started, key });  // `at`: when the use ended
  } catch (err) {
    emit({ event: 'failed', message: String(err?.message ?? err).slice(0, 300) });
  }
  await delay(interval);
}
process.exit(0);
