// The demo (scripts/demo.sh runs it): credsync against the bundled emulator,
// step by step for a newcomer. The emulator plays Alibaba Cloud and the
// cluster; credsync runs as it would in a pod, given only the RRSA
// environment; the official Node SDK plays the app, and calls Refresh when a
// cloud API rejects its key.
//
// Needs CREDSYNC_EMULATOR and CREDSYNC_BIN (the binaries) and `npm ci` at
// the repository top. Every secret it prints is masked.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

import { startEmulator } from './emulator.mjs';
import { callRpc, ECS_VERSION, makeOpenApiClient } from './sdk_clients.mjs';
import { runCredsync, setUpRrsaWorld, startSidecar, waitForFile, writeConfig } from './sidecar.mjs';

const require = createRequire(import.meta.url);
const Credential = require('@alicloud/credentials').default;

const SECRET_NAME = 'acs/ram/user/demo-app';
const REFRESH_INTERVAL = '3s';

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const bold = (s) => (useColor ? `\x1b[1m${s}\x1b[0m` : s);

let stepNumber = 0;
function step(title) {
  stepNumber += 1;
  console.log(`\n${bold(`Step ${stepNumber}. ${title}`)}`);
}
const say = (text = '') => console.log(`  ${text}`);
const show = (label, value) => console.log(`  ${label.padEnd(24)} ${value}`);

// Shows the last 4 characters of a secret and stars for the rest.
function mask(secret) {
  const s = String(secret ?? '');
  return s.length <= 4 ? '****' : `****${s.slice(-4)}`;
}

// credentials.ini with every access_key_secret masked.
function masked(ini) {
  return ini.replace(/^(access_key_secret = )(.*)$/gm, (_, key, value) => key + mask(value));
}

// What an app gets from the official SDK's default credential chain.
async function appCredential(file) {
  process.env.ALIBABA_CLOUD_CREDENTIALS_FILE = file;
  process.env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED = 'true';
  process.env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = 'true';
  const credential = new Credential();
  return { credential, model: await credential.getCredential() };
}

// GET of a JSON document from a "host:port" over plain HTTP.
function getJson(address, requestPath, headers = {}) {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    http.get({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), path: requestPath, headers },
             (response) => {
               let body = '';
               response.setEncoding('utf8');
               response.on('data', (chunk) => { body += chunk; });
               response.on('end', () => (response.statusCode === 200
                 ? resolve(JSON.parse(body))
                 : reject(new Error(`${requestPath.replace(/^\/[^/]+/, '/<path secret>')}: ${response.statusCode} ${body}`))));
             }).on('error', reject);
  });
}

async function main() {
  step('Start the emulator: STS, KMS, an ECS-style service and the cluster\'s OIDC issuer');
  const emu = await startEmulator({ logLevel: 'info' });
  show('listening on', emu.url);
  show('test CA', emu.caFile);
  let sidecar;
  try {
    step('Set up RRSA as ACK would: an OIDC provider, a role, a managed secret, a projected token');
    const world = await setUpRrsaWorld(emu, { name: 'demo', secrets: [SECRET_NAME] });
    const original = world.secrets[SECRET_NAME];
    show('role', world.roleArn);
    show('trusted service account', world.subject);
    show('secret (RAMCredentials)', SECRET_NAME);
    show('its AccessKey', `${original.access_key_id} / ${mask(original.access_key_secret)}`);
    show('projected token file', world.tokenFile);

    step('Start credsync with only the RRSA environment and a small config');
    const outDir = path.join(world.dir, 'out');
    // The loopback local API's path secret, as a mounted Secret would hold it.
    const pathSecret = crypto.randomBytes(32).toString('hex');
    const pathSecretFile = path.join(world.dir, 'local-api-path-secret');
    fs.writeFileSync(pathSecretFile, `${pathSecret}\n`, { mode: 0o600 });
    const config = {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: SECRET_NAME }],
      output: { directory: outDir },
      refresh: { interval: REFRESH_INTERVAL, jitter: 0 },
      local_api: { listen: '127.0.0.1:0', path_secret_file: pathSecretFile },
    };
    const configFile = writeConfig(world.dir, config);
    for (const [name, value] of Object.entries(world.env)) show(name, value);
    say(`config: ${JSON.stringify(config)}`);
    sidecar = await startSidecar({ configFile, env: world.env, name: 'demo' });
    show('credsync pid', sidecar.pid);

    step('credentials.ini appears (AssumeRoleWithOIDC -> GetSecretValue -> atomic write)');
    const file = path.join(outDir, 'credentials.ini');
    const first = await waitForFile(file);
    show(file, `-> ${fs.readlinkSync(file)} (mode ${(fs.statSync(file).mode & 0o777).toString(8)})`);
    console.log(masked(first).replace(/^/gm, '    '));
    const written = await sidecar.waitForLog((l) => l.msg === 'written', 'the first write');
    show('credsync logged', `${written.msg}: profile ${written.profile}, key ${written.access_key_id}, generation ${written.generation}`);

    step('The app reads it with the official SDK and calls a cloud API');
    const { credential, model } = await appCredential(file);
    show('SDK found', `${model.accessKeyId} via ${model.providerName}`);
    const regions = await callRpc(makeOpenApiClient(emu.endpoint, { credential, ca: emu.ca.toString() }),
                                  'DescribeRegions', ECS_VERSION, {});
    show('DescribeRegions', `${regions.Regions.Region.length} regions`);

    step('KMS rotates the secret');
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET_NAME)}/rotate`, {});
    show('new AccessKey', `${rotated.access_key_id} / ${mask(rotated.access_key_secret)}`);
    show('previous', `${rotated.previous_access_key_id} (still valid until the next rotation)`);

    step(`credsync notices on its next refresh (interval ${REFRESH_INTERVAL} here, 1h by default) and rewrites the file`);
    const second = await waitForFile(file, (c) => c.includes(rotated.access_key_id), 30000, 'change');
    console.log(masked(second).replace(/^/gm, '    '));
    const line = await sidecar.waitForLog((l) => l.msg === 'rotated', 'the rotation');
    show('credsync logged', `${line.msg}: ${line.previous_access_key_id} -> ${line.access_key_id}, generation ${line.generation}`);
    const after = await appCredential(file);
    show('a new SDK client reads', after.model.accessKeyId);

    step('Apps with no code at all: the credentials URI that the Go, Python and Java SDKs poll');
    const localApi = await sidecar.listening('local_api');
    const uriPath = `/${pathSecret}/v1/credentials/default`;
    show('ALIBABA_CLOUD_CREDENTIALS_URI', `http://${localApi}/${mask(pathSecret)}/v1/credentials/default`);
    for (const [sdk, agent] of [['credentials-go', 'AlibabaCloud (linux; amd64) Golang/1.22 Credentials/1.4.7 TeaDSL/1'],
                                ['credentials-java', 'AlibabaCloud (Linux; amd64) Java/17 Credentials/1.0.0 TeaDSL/1']]) {
      const document = await getJson(localApi, uriPath, { 'User-Agent': agent });
      const inSeconds = Math.round((Date.parse(document.Expiration) - Date.now()) / 1000);
      show(`${sdk} gets`, `${document.AccessKeyId}, Expiration in ${inSeconds} s: it asks again within 60 s`);
    }

    step('An emergency rotation: the key is replaced and the old one revoked at once');
    const emergency = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET_NAME)}/rotate`,
                                      { revoke_previous: true });
    show('new AccessKey', `${emergency.access_key_id} / ${mask(emergency.access_key_secret)}`);
    show('revoked', emergency.previous_access_key_id);
    let failedKey = after.model.accessKeyId;
    try {
      await callRpc(makeOpenApiClient(emu.endpoint, { credential: after.credential, ca: emu.ca.toString() }),
                    'DescribeRegions', ECS_VERSION, {});
      say('(credsync had already picked up the new key on its schedule)');
    } catch (err) {
      show('the app\'s next call fails', `${err.code} for ${failedKey}`);
    }

    step('The app asks credsync for a newer key (gRPC Refresh; here through the CLI client)');
    const refreshArgs = ['refresh', '--config', configFile, '--profile', 'default', '--failed-key-id', failedKey];
    say(`credsync ${refreshArgs.join(' ')}`);
    const refreshed = await runCredsync(refreshArgs, { env: world.env, name: 'demo-refresh' });
    show('answer', `${refreshed.stdout.trim()} (exit ${refreshed.code})`);
    if (refreshed.code !== 0) throw new Error(`refresh failed: ${refreshed.stderr}`);
    const renewed = await appCredential(file);
    show('a new SDK client reads', renewed.model.accessKeyId);
    const retried = await callRpc(makeOpenApiClient(emu.endpoint, { credential: renewed.credential, ca: emu.ca.toString() }),
                                  'DescribeRegions', ECS_VERSION, {});
    show('the retry succeeds', `DescribeRegions: ${retried.Regions.Region.length} regions`);
    show('the credentials URI now', (await getJson(localApi, uriPath)).AccessKeyId);
    const counters = await emu.admin('GET', '/admin/counters');
    show('KMS GetSecretValue calls', counters.actions.GetSecretValue.requests);

    step('Stop credsync (SIGTERM)');
    const stopped = await sidecar.stop();
    sidecar = undefined;
    show('exit', `code ${stopped.code} after ${stopped.ms} ms; the file stays, consistent`);
    say();
    say('Done. The whole suite: scripts/test.sh');
  } finally {
    if (sidecar) await sidecar.stop();
    await emu.stop();
  }
}

main().catch((err) => {
  console.error(`demo failed: ${err.stack || err}`);
  process.exit(1);
});
