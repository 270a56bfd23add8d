// The app side of credsync's Refresh, in Node, with only @grpc/grpc-js,
// @grpc/proto-loader and @alicloud/credentials: the example
// docs/integration.md points to. Used by the app loop end to end
// (tests/e2e/node/app_loop.test.mjs) and by the app container of the podman
// pod end to end (tests/e2e/podman/app/app.mjs).

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const Credential = require('@alicloud/credentials').default;

// The error codes that mean "this AccessKey is no longer valid". Add the
// codes of other services here (OSS answers plain InvalidAccessKeyId).
const KEY_REJECTED = new Set(['InvalidAccessKeyId.NotFound', 'InvalidAccessKeyId.Inactive', 'InvalidAccessKeyId']);

// The POP error code of an SDK error (tea/openapi-core: err.data.Code; pop-core: err.code).
export const errorCode = (err) => err?.data?.Code ?? err?.code;

// A client of credsync's Refresh on its Unix socket (the shared volume),
// from credsync.proto (ship the .proto with the app, or generate stubs).
export function credsyncRefresher({ socket, protoDir }) {
  const definition = protoLoader.loadSync('credsync/v1/credsync.proto',
                                          { includeDirs: [protoDir], keepCase: true, longs: String, enums: String });
  const { CredsyncService } = grpc.loadPackageDefinition(definition).credsync.v1;
  const client = new CredsyncService(`unix:${socket}`, grpc.credentials.createInsecure());
  return {
    // Asks credsync for a newer key than `failedKeyId`; resolves its answer
    // ({outcome, access_key_id, generation, ...}) once the file holds it.
    refresh(profile, failedKeyId, reason) {
      return new Promise((resolve, reject) => {
        client.Refresh({ profile, failed_access_key_id: failedKeyId, reason },
                       { deadline: new Date(Date.now() + 40000) },
                       (err, response) => (err ? reject(err) : resolve(response)));
      });
    },
    close: () => client.close(),
  };
}

// An app's service client that survives emergency key rotations.
// buildClient(credential) makes the service's SDK client from a credential
// client. The official SDK reads credentials.ini once per credential
// object, so after credsync rewrote the file the app builds a new one.
//
//   const app = recoveringClient({buildClient, refresher, profile: 'default'});
//   const regions = await app.call((client) => client.callApi(...));
export function recoveringClient({ buildClient, refresher, profile = 'default' }) {
  let credential;
  let client;
  const rebuild = () => {
    credential = new Credential();  // default chain: ALIBABA_CLOUD_CREDENTIALS_FILE
    client = buildClient(credential);
  };
  rebuild();
  return {
    get credential() { return credential; },
    // A new credential client from the file, for an app that notices the
    // file changed (Watch, or a stat before calls) before a call fails.
    rebuild,
    async call(operation) {
      try {
        return await operation(client);
      } catch (err) {
        const code = errorCode(err);
        if (!KEY_REJECTED.has(code)) throw err;
        const { accessKeyId } = await credential.getCredential();
        // Resolves when the file holds another key (whether credsync had it
        // already or fetched it now); rejects (RESOURCE_EXHAUSTED,
        // FAILED_PRECONDITION, UNAVAILABLE) when it cannot help.
        await refresher.refresh(profile, accessKeyId, code);
        rebuild();
        return operation(client);  // once: a second failure is the caller's
      }
    },
  };
}

