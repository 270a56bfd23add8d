// The whole app loop of docs/design.md §1.3 step 5, end to end: a Node app
// using only the official SDK (@alicloud/credentials' default chain reading
// ALIBABA_CLOUD_CREDENTIALS_FILE, @alicloud/openapi-core calling the
// emulator's ECS DescribeRegions) works; an administrator rotates the secret
// and revokes the old key without credsync knowing (an emergency rotation);
// the app's next call fails with InvalidAccessKeyId.NotFound; the app calls
// credsync's Refresh over the Unix socket naming the failed key, builds a
// new credential client from the file, retries and succeeds; KMS saw exactly
// one extra GetSecretValue.
//
// The app is tests/e2e/node/app_client.mjs, the Node example that
// docs/integration.md points to: it needs only @grpc/grpc-js,
// @grpc/proto-loader, @alicloud/credentials and the service's own client.
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_app_loop).

import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { credsyncRefresher, errorCode, recoveringClient } from './app_client.mjs';
import { startEmulator } from './emulator.mjs';
import { callRpc, ECS_VERSION, makeOpenApiClient } from './sdk_clients.mjs';
import { setUpRrsaWorld, startSidecar, waitForFile, writeConfig } from './sidecar.mjs';

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'proto');
const SECRET = 'acs/ram/user/apploop-app';

let emu;
let sc;

before(async () => {
  emu = await startEmulator();
});

after(async () => {
  await sc?.stop();
  await emu?.stop();
});

async function counters() {
  return (await emu.admin('GET', '/admin/counters')).actions ?? {};
}

describe('the app loop', () => {
  // Verifies the app, using only the official SDK and Refresh, recovers
  // from an emergency rotation the sidecar did not see, with one extra
  // GetSecretValue.
  it('recovers from an emergency rotation with one Refresh', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'apploop', secrets: [SECRET] });
    const out = path.join(world.dir, 'out');
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: SECRET }],
      output: { directory: out },
      // No scheduled fetch during the test: the sidecar learns of the
      // rotation only through the app's Refresh.
      refresh: { interval: '1h', jitter: 0, rotation_jitter: '0s' },
      log: { level: 'debug' },
    });
    sc = await startSidecar({ configFile, env: world.env, name: 'apploop' });
    const socket = await sc.listening('unix');
    const file = path.join(out, 'credentials.ini');
    const first = world.secrets[SECRET];
    await waitForFile(file, (c) => c.includes(first.access_key_id));

    // The app container's environment: only the file, no other credential.
    for (const name of Object.keys(process.env)) {
      if (name.startsWith('ALIBABA_CLOUD_')) delete process.env[name];
    }
    process.env.ALIBABA_CLOUD_CREDENTIALS_FILE = file;
    process.env.ALIBABA_CLOUD_CLI_PROFILE_DISABLED = 'true';
    process.env.ALIBABA_CLOUD_ECS_METADATA_DISABLED = 'true';

    const refresher = credsyncRefresher({ socket, protoDir: PROTO_DIR });
    const refreshCalls = [];
    const app = recoveringClient({
      buildClient: (credential) => makeOpenApiClient(emu.endpoint, { credential }),
      refresher: {
        refresh: async (...args) => {
          const answer = await refresher.refresh(...args);
          refreshCalls.push({ args, answer });
          return answer;
        },
      },
    });
    const describeRegions = (client) => callRpc(client, 'DescribeRegions', ECS_VERSION, {});
    try {
      // 1. The app works with the first key.
      const regions = await app.call(describeRegions);
      assert.ok(regions.Regions.Region.length > 0);
      assert.equal((await app.credential.getCredential()).accessKeyId, first.access_key_id);
      assert.deepEqual(refreshCalls, []);

      // 2. Emergency rotation: a new key, the old one revoked at once.
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`,
                                      { revoke_previous: true });
      assert.equal(rotated.previous_access_key_id, first.access_key_id);
      await emu.admin('DELETE', '/admin/counters');

      // 3. The old credential client now fails the way the app sees it.
      const stale = makeOpenApiClient(emu.endpoint, { credential: app.credential });
      await assert.rejects(describeRegions(stale), (err) => errorCode(err) === 'InvalidAccessKeyId.NotFound');

      // 4. The app's call: fails, Refresh, new credential client, retry.
      const again = await app.call(describeRegions);
      assert.ok(again.Regions.Region.length > 0);
      assert.equal(refreshCalls.length, 1);
      assert.deepEqual(refreshCalls[0].args, ['default', first.access_key_id, 'InvalidAccessKeyId.NotFound']);
      assert.equal(refreshCalls[0].answer.outcome, 'OUTCOME_REFRESHED');
      assert.equal(refreshCalls[0].answer.access_key_id, rotated.access_key_id);
      assert.equal((await app.credential.getCredential()).accessKeyId, rotated.access_key_id);

      // 5. Exactly one extra GetSecretValue; the target service saw two
      // rejected calls (step 3 and the app's first try) and one success.
      const seen = await counters();
      assert.equal(seen.GetSecretValue?.requests, 1, JSON.stringify(seen));
      assert.equal(seen.DescribeRegions?.requests, 3, JSON.stringify(seen));
      assert.equal(seen.DescribeRegions?.successes, 1, JSON.stringify(seen));
      assert.equal(seen.DescribeRegions?.failures?.['InvalidAccessKeyId.NotFound'], 2, JSON.stringify(seen));

      // 6. Another replica that saw the same failure asks too: answered
      // from memory, no further upstream call.
      const late = await refresher.refresh('default', first.access_key_id, 'InvalidAccessKeyId.NotFound');
      assert.equal(late.outcome, 'OUTCOME_ALREADY_CURRENT');
      assert.equal(late.access_key_id, rotated.access_key_id);
      assert.equal((await counters()).GetSecretValue?.requests, 1);
    } finally {
      refresher.close();
    }
  });
});
