// An app with no credential code of its own, for sdk_external.test.mjs: it
// builds one @alicloud/credentials default chain and one OpenAPI client at
// start, never rebuilds them, and calls the emulator's ECS DescribeRegions
// every APP_PERIOD_MS, printing one JSON line per call: the AccessKey id the
// credential client gave, the provider name, and whether the call worked.
// Never prints a secret.
//
// Environment: APP_ENDPOINT (the emulator, 127.0.0.1:PORT), APP_CA_PEM (the
// emulator's CA, PEM), APP_PERIOD_MS; plus whatever the SDK reads (HOME,
// ALIBABA_CLOUD_*), which the test sets as a pod would.

import { createRequire } from 'node:module';
import { setTimeout as delay } from 'node:timers/promises';

import { callRpc, ECS_VERSION, makeOpenApiClient } from './sdk_clients.mjs';

const require = createRequire(import.meta.url);
const Credential = require('@alicloud/credentials').default;

const credential = new Credential();
const client = makeOpenApiClient(process.env.APP_ENDPOINT, { credential, ca: process.env.APP_CA_PEM });
const period = Number(process.env.APP_PERIOD_MS || 250);

for (;;) {
  const line = { t: Date.now() };
  try {
    const model = await credential.getCredential();
    line.key = model.accessKeyId;
    line.provider = model.providerName;
    line.token = model.securityToken ? 'set' : 'none';
    await callRpc(client, 'DescribeRegions', ECS_VERSION, {});
    line.ok = true;
  } catch (err) {
    line.ok = false;
    line.code = err.code || err.name;
  }
  process.stdout.write(`${JSON.stringify(line)}\n`);
  await delay(period);
}
