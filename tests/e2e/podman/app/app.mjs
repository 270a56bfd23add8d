// The app container of the podman pod end to end (tests/e2e/podman): a Node
// app with only the official SDK (@alicloud/credentials' default chain reading
// ALIBABA_CLOUD_CREDENTIALS_FILE, @alicloud/openapi-core) and credsync's
// Refresh (tests/e2e/node/app_client.mjs). It calls the emulator's ECS
// DescribeRegions every CALL_INTERVAL_MS and prints one JSON line per event:
//   {"event":"call","key":ID}                 a call succeeded with key ID
//   {"event":"reloaded","key":ID}             the file changed; new credential client
//   {"event":"refreshed","failed":ID,"key":N} a call was rejected; Refresh, rebuild, retry
//   {"event":"failed","code":C,"message":M}   a call failed for good
// and exits 0 on SIGTERM.
//
// Environment: TARGET_ENDPOINT (host:port of the emulator), CREDSYNC_SOCKET,
// PROTO_DIR, CALL_INTERVAL_MS, and the SDK's own variables.

import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

import { credsyncRefresher, errorCode, recoveringClient } from '../../node/app_client.mjs';
import { callRpc, ECS_VERSION, makeOpenApiClient } from '../../node/sdk_clients.mjs';

const endpoint = process.env.TARGET_ENDPOINT;
const file = process.env.ALIBABA_CLOUD_CREDENTIALS_FILE;
const socket = process.env.CREDSYNC_SOCKET ?? '/var/run/credsync/credsync.sock';
const interval = Number(process.env.CALL_INTERVAL_MS ?? 250);
if (!endpoint || !file || !process.env.PROTO_DIR) {
  console.error('app: TARGET_ENDPOINT, ALIBABA_CLOUD_CREDENTIALS_FILE and PROTO_DIR are required');
  process.exit(2);
}

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
let stopping = false;
process.on('SIGTERM', () => { stopping = true; });

const refresher = credsyncRefresher({ socket, protoDir: process.env.PROTO_DIR });
const app = recoveringClient({
  buildClient: (credential) => makeOpenApiClient(endpoint, { credential }),
  refresher: {
    refresh: async (profile, failed, reason) => {
      const answer = await refresher.refresh(profile, failed, reason);
      emit({ event: 'refreshed', failed, key: answer.access_key_id, outcome: answer.outcome });
      return answer;
    },
  },
});
const keyOf = async () => (await app.credential.getCredential()).accessKeyId;

// credentials.ini is switched atomically (a new inode): a stat tells.
const identity = () => { const st = fs.statSync(file); return `${st.dev}:${st.ino}:${st.mtimeMs}`; };
let seen = identity();
while (!stopping) {
  try {
    const now = identity();
    if (now !== seen) {
      seen = now;
      app.rebuild();
      emit({ event: 'reloaded', key: await keyOf() });
    }
    const body = await app.call((client) => callRpc(client, 'DescribeRegions', ECS_VERSION, {}));
    if (!(body.Regions?.Region?.length > 0)) throw new Error(`DescribeRegions answered ${JSON.stringify(body)}`);
    emit({ event: 'call', key: await keyOf() });
  } catch (err) {
    emit({ event: 'failed', code: errorCode(err) ?? null, message: String(err?.message ?? err).slice(0, 300) });
  }
  await delay(interval);
}
refresher.close();
process.exit(0);
