// The emulator demo (scripts/demo.sh runs it): a newcomer's tour of
// a KMS GetSecretValue round trip made by the official Alibaba Cloud Node SDK
// against credsync-emulator, a rotation, and the new key on the next call.
//
// Needs CREDSYNC_EMULATOR (the binary) and `npm ci` at the repository top.
// Every secret it prints is masked: key ids in full, secrets but 4 chars.

import { createRequire } from 'node:module';

import { startEmulator } from './emulator.mjs';

const require = createRequire(import.meta.url);
const openApiCore = require('@alicloud/openapi-core');
const OpenApiClient = openApiCore.default;
const { $OpenApiUtil, OpenApiUtil } = openApiCore;
const { RuntimeOptions } = require('@darabonba/typescript');

const SECRET_NAME = 'acs/ram/user/demo-app';

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const bold = (s) => (useColor ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s) => (useColor ? `\x1b[2m${s}\x1b[0m` : s);

let stepNumber = 0;
function step(title) {
  stepNumber += 1;
  console.log(`\n${bold(`Step ${stepNumber}. ${title}`)}`);
}
const say = (text = '') => console.log(`  ${text}`);
const show = (label, value) => console.log(`  ${label.padEnd(22)} ${value}`);

// Shows the last 4 characters of a secret and stars for the rest.
function mask(secret) {
  const s = String(secret ?? '');
  if (s.length <= 4) return '*'.repeat(s.length);
  return `${'*'.repeat(s.length - 4)}${s.slice(-4)}`;
}

// GetSecretValue exactly as an application would call it with the official
// SDK's generic client: RPC style, signed ACS3-HMAC-SHA256 (the default).
async function getSecretValue(emu, key, versionStage) {
  const client = new OpenApiClient(new $OpenApiUtil.Config({
    accessKeyId: key.access_key_id,
    accessKeySecret: key.access_key_secret,
    endpoint: emu.endpoint,   // '127.0.0.1:PORT' instead of kms.cn-hangzhou.aliyuncs.com
    protocol: 'https',
    ca: emu.ca.toString('utf8'),  // trust the emulator's test CA
  }));
  const params = new $OpenApiUtil.Params({
    action: 'GetSecretValue',
    version: '2016-01-20',
    protocol: 'HTTPS',
    pathname: '/',
    method: 'POST',
    authType: 'AK',
    style: 'RPC',
    reqBodyType: 'formData',
    bodyType: 'json',
  });
  const query = { SecretName: SECRET_NAME };
  if (versionStage) query.VersionStage = versionStage;
  const request = new $OpenApiUtil.OpenApiRequest({ query: OpenApiUtil.query(query) });
  const response = await client.callApi(params, request, new RuntimeOptions({}));
  return response.body;
}

function showSecretValue(body) {
  const data = JSON.parse(body.SecretData);
  show('RequestId', body.RequestId);
  show('SecretName', body.SecretName);
  show('SecretType', body.SecretType);
  show('VersionId', body.VersionId);
  show('VersionStages', JSON.stringify(body.VersionStages?.VersionStage));
  show('SecretData', '(a JSON string; the secret masked here)');
  show('  AccessKeyId', data.AccessKeyId);
  show('  AccessKeySecret', mask(data.AccessKeySecret));
  show('  GenerateTimestamp', data.GenerateTimestamp);
  return data;
}

async function main() {
  console.log(bold('credsync-emulator demo: the official Alibaba Cloud Node SDK against a local KMS'));

  step('Start the emulator');
  const emu = await startEmulator({ logLevel: 'info' });
  try {
    say('credsync-emulator speaks the real Alibaba Cloud wire protocol over HTTPS with its own test CA.');
    show('endpoint', emu.url);
    show('test CA', emu.caFile);
    show('log (stderr)', emu.stderrFile);
    say(dim('It listens on a free port (--listen 127.0.0.1:0) and wrote the port to --port-file.'));

    step('Create a RAMCredentials secret (admin API)');
    say(`POST /admin/secrets {"name": "${SECRET_NAME}", "user_name": "demo-app", "rotation_interval_seconds": 604800}`);
    const secret = await emu.admin('POST', '/admin/secrets',
                                   { name: SECRET_NAME, user_name: 'demo-app', rotation_interval_seconds: 604800 });
    say('KMS now holds the AccessKey of RAM user "demo-app" as the secret\'s ACSCurrent version:');
    show('version_id', secret.version_id);
    show('access_key_id', secret.access_key_id);
    show('access_key_secret', mask(secret.access_key_secret));

    step('Create a static access key that may read it (admin API)');
    say(`POST /admin/access-keys {"secrets": ["${SECRET_NAME}"]}`);
    const caller = await emu.admin('POST', '/admin/access-keys', { secrets: [SECRET_NAME] });
    say('This is the caller\'s own key (in production: an STS session from RRSA).');
    show('access_key_id', caller.access_key_id);
    show('access_key_secret', mask(caller.access_key_secret));

    step('GetSecretValue with @alicloud/openapi-core (ACS3-HMAC-SHA256)');
    say(`POST ${emu.url}/?SecretName=${encodeURIComponent(SECRET_NAME)}`);
    say(dim('headers: x-acs-action: GetSecretValue, x-acs-version: 2016-01-20, x-acs-date, x-acs-signature-nonce,'));
    say(dim(`         x-acs-content-sha256, Authorization: ACS3-HMAC-SHA256 Credential=${caller.access_key_id},` +
            'SignedHeaders=…,Signature=…'));
    say('The emulator rebuilt the canonical request, checked the signature, and answered:');
    const first = showSecretValue(await getSecretValue(emu, caller));
    say(first.AccessKeyId === secret.access_key_id
        ? 'That is the key created in step 2.'
        : `UNEXPECTED: step 2 created ${secret.access_key_id}`);

    step('Rotate the secret (admin API; KMS RotateSecret does the same)');
    say(`POST /admin/secrets/${encodeURIComponent(SECRET_NAME)}/rotate {"revoke_previous": false}`);
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET_NAME)}/rotate`,
                                    { revoke_previous: false });
    say('A new AccessKey became ACSCurrent; the old one is ACSPrevious and still works until the next rotation.');
    show('new version_id', rotated.version_id);
    show('new access_key_id', rotated.access_key_id);
    show('new access_key_secret', mask(rotated.access_key_secret));
    show('previous key id', rotated.previous_access_key_id);

    step('GetSecretValue again: the new key');
    const second = showSecretValue(await getSecretValue(emu, caller));
    say(second.AccessKeyId === rotated.access_key_id
        ? `The next call returns the rotated key (${second.AccessKeyId}, was ${first.AccessKeyId}).`
        : `UNEXPECTED: the rotation created ${rotated.access_key_id}`);

    step('GetSecretValue with VersionStage=ACSPrevious: the old key');
    const previous = showSecretValue(await getSecretValue(emu, caller, 'ACSPrevious'));
    say(previous.AccessKeyId === first.AccessKeyId
        ? 'The previous key, for callers still finishing work with it.'
        : `UNEXPECTED: expected ${first.AccessKeyId}`);

    const ok = first.AccessKeyId === secret.access_key_id && second.AccessKeyId === rotated.access_key_id &&
               previous.AccessKeyId === first.AccessKeyId;
    step('Stop the emulator');
    await emu.stop();
    say(`Done. ${ok ? 'Every step matched.' : 'Some steps did not match (see UNEXPECTED above).'}`);
    say(dim('Next: tests/e2e/node/sdk_fidelity.test.mjs proves the same for every official SDK and error path.'));
    if (!ok) process.exitCode = 1;
  } catch (err) {
    console.error(`\ndemo failed: ${err.stack || err}`);
    console.error(`\nemulator stderr (tail of ${emu.stderrFile}):\n${emu.stderrTail(4000)}`);
    await emu.stop();
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(`demo failed: ${err.stack || err}`);
  process.exitCode = 1;
});
