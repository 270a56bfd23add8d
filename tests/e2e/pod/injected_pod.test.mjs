// The injector's proof in native mode (issue 18): a user's plain Deployment
// pod, with no credsync in it, is reviewed by `credsync injector review`, the
// patch is applied by fast-json-patch and validated by kubernetes-models
// (tests/e2e/injector/injection.mjs), and the patched pod is run by the pod
// simulation (tests/e2e/pod/podsim.mjs) against credsync-emulator: the
// injected native sidecar fetches the key with RRSA, and the app (the
// official Node SDK, tests/e2e/podman/app/app.mjs), pointed at the file only
// by what the injector added, calls the cloud with it.
//
// The test environment's endpoints reach credsync through the pod's
// credsync.io/config-map ConfigMap (injection.mjs emulatorConfigMap), as an
// operator's would, with the emulator's CA beside config.yaml (tls.ca_file).
// Nothing of the patched pod is adapted. What the pod simulation stands in
// for: the image (credsync's command is this tree's
// binary, CREDSYNC_BIN; the app runs this machine's node on the repository's
// app.mjs), the kubelet's projected tokens (minted by the emulator for the
// pod's service account) and the kube-root-ca.crt ConfigMap.
//
// run.sh runs this file in network, mount and PID namespaces of its own:
//   CREDSYNC_BIN=... CREDSYNC_EMULATOR=... tests/e2e/pod/run.sh tests/e2e/pod/injected_pod.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  EMULATOR_CA_VOLUME, INJECTED_CONFIG_DIR, admissionReview, applyAnswer, assertValidPod, emulatorConfigMap, findContainer,
  injectableDeployment, injectedConfig, injectionWorld, keyIdsIn, podFromDeployment, runReview,
} from '../injector/injection.mjs';
import { startEmulator } from '../node/emulator.mjs';
import { ACCOUNT, ISSUER, until } from '../node/sidecar.mjs';
import { REPO, mintTokenWith, startPod, suiteDirectories } from './podsim.mjs';

const NAMESPACE = 'shop';
const SERVICE_ACCOUNT = 'shop';
const SECRET = 'acs/ram/user/injected-shop';
const ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-injected`;
const PROVIDER_ARN = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-injected`;
const CONFIG_MAP = 'credsync-emulator';
const CREDSYNC_PATH = '/usr/local/bin/credsync';
const CREDENTIALS_FILE = '/var/run/credsync/credentials.ini';
const APP_UID = 1000;

const binary = process.env.CREDSYNC_BIN;
const { logDir, workDir } = suiteDirectories('credsync-podsim-injected-');
const log = (line) => process.stdout.write(`# ${line}\n`);

let emu;
let firstKey;
let objects;  // what the pods' volumes and env refer to

// The injector's flags as the chart passes them (the image is a name only:
// the pod simulation maps credsync's command to CREDSYNC_BIN).
const reviewFlags = () => ['--image', 'registry.example/credsync:0.1.0', '--kms-region', 'cn-hangzhou',
                           '--oidc-provider-arn', PROVIDER_ARN];

// The app as a user writes it: the official SDK's default chain, no
// credsync in sight; the emulator stands for the cloud it calls.
function sdkApp(name, extra = {}) {
  return {
    name,
    image: 'registry.example/shop-app:1.0',
    command: [process.execPath, path.join(REPO, 'tests/e2e/podman/app/app.mjs')],
    env: [
      { name: 'TARGET_ENDPOINT', value: emu.endpoint },
      { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/emulator/ca.pem' },
      { name: 'PROTO_DIR', value: path.join(REPO, 'proto') },
      { name: 'ALIBABA_CLOUD_ECS_METADATA_DISABLED', value: 'true' },
      { name: 'ALIBABA_CLOUD_CLI_PROFILE_DISABLED', value: 'true' },
      { name: 'CALL_INTERVAL_MS', value: '250' },
    ],
    securityContext: { runAsUser: APP_UID, runAsGroup: APP_UID, runAsNonRoot: true },
    volumeMounts: [{ name: EMULATOR_CA_VOLUME, mountPath: '/etc/emulator', readOnly: true }],
    ...extra,
  };
}

const emulatorCaVolume = { name: EMULATOR_CA_VOLUME, configMap: { name: CONFIG_MAP, items: [{ key: 'ca.pem', path: 'ca.pem' }] } };

// Reviews the Deployment's pod, applies and validates the patch; resolves
// {pod (the patched Pod), ops, answer}.
async function inject(deployment, name) {
  const pod = podFromDeployment(deployment);
  const answer = runReview({ binary, flags: reviewFlags(), review: admissionReview(pod),
                             file: path.join(logDir, `${name}.review.json`) });
  const patched = applyAnswer(pod, answer);
  await assertValidPod(patched.pod);
  fs.writeFileSync(path.join(logDir, `${name}.patched.json`), JSON.stringify(patched.pod, null, 2));
  log(`${name}: ${patched.ops.length} patch operations applied by fast-json-patch; a valid v1 Pod; ` +
      `warnings ${JSON.stringify(answer.response.warnings ?? [])}`);
  return { ...patched, answer };
}

const mintToken = (request) => mintTokenWith(emu, request);

// The app's JSON event lines so far.
const eventsOf = (proc) => proc.output(1 << 20).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

async function withPod(options, body) {
  let pod;
  try {
    pod = await startPod({ objects, namespace: NAMESPACE, workDir, logDir, mintToken, log,
                           images: { [CREDSYNC_PATH]: binary }, ...options });
    return await body(pod);
  } catch (err) {
    throw new Error(`${err.message}\n\nlogs in ${logDir}\n${pod ? pod.describeLogs() : ''}\n` +
                    `--- emulator\n${emu?.stderrTail(4096) ?? ''}`, { cause: err });
  } finally {
    await pod?.stop();
  }
}

before(async () => {
  assert.ok(binary && fs.existsSync(binary), `CREDSYNC_BIN=${binary} does not name the credsync binary`);
  emu = await startEmulator();
  firstKey = await injectionWorld(emu, { issuer: ISSUER, providerArn: PROVIDER_ARN, roleArn: ROLE_ARN,
                                         namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, secret: SECRET });
  objects = [
    emulatorConfigMap({ name: CONFIG_MAP, namespace: NAMESPACE, emu }),
    // Every namespace's kube-root-ca.crt, which the kube-api-access volume projects.
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kube-root-ca.crt', namespace: NAMESPACE },
      data: { 'ca.crt': emu.ca.toString('utf8') } },
  ];
  log(`emulator on ${emu.url}; ${SECRET} is ${firstKey}; logs in ${logDir}`);
});

after(async () => {
  if (emu) await emu.stop();
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe('an injected pod in native mode, run by the pod simulation', { concurrency: false }, () => {
  test('a plain Deployment: the native sidecar fetches the key, the SDK app calls with it, rotation follows', async () => {
    const deployment = injectableDeployment({
      name: 'shop', namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, secret: SECRET, roleArn: ROLE_ARN,
      configMap: CONFIG_MAP, spec: { containers: [sdkApp('app')], volumes: [emulatorCaVolume] },
    });
    const { pod: patched } = await inject(deployment, 'shop');

    // What the contract says the patch adds, seen in the patched pod.
    const sidecar = patched.spec.initContainers?.[0];
    assert.equal(sidecar?.name, 'credsync', 'native: credsync is the first init container');
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.ok(sidecar.startupProbe?.httpGet, 'native: a startupProbe holds the app until the file is written');
    assert.deepEqual(sidecar.command, [CREDSYNC_PATH]);
    assert.deepEqual(sidecar.args, ['run', '--config', `${INJECTED_CONFIG_DIR}/config.yaml`,
                                    '--config-env', 'CREDSYNC_CONFIG']);
    assert.equal(injectedConfig(sidecar).profiles?.[0]?.secret_name, SECRET);
    assert.equal(patched.spec.securityContext.fsGroup, 65532, 'the pod had no fsGroup: the injector adds one');
    const app = findContainer(patched.spec, 'app');
    assert.deepEqual(app.env.filter((e) => e.name === 'ALIBABA_CLOUD_CREDENTIALS_FILE'),
                     [{ name: 'ALIBABA_CLOUD_CREDENTIALS_FILE', value: CREDENTIALS_FILE }]);

    await withPod({ pod: patched, name: 'shop-7d4b9c8f6d-x5k2p' }, async (pod) => {
      // The startup probe passed before the app started, so the file is there.
      const file = pod.hostPath('credsync', CREDENTIALS_FILE);
      assert.deepEqual(keyIdsIn(fs.readFileSync(file, 'utf8')), [firstKey]);
      const st = fs.statSync(file);
      assert.equal(st.gid, 65532, 'credentials.ini group: the fsGroup the injector added');
      assert.equal(st.mode & 0o007, 0, 'credentials.ini is readable by others');

      // The app (uid 1000, reading through the injected fsGroup) calls the
      // cloud with the key it found where the injected variable points.
      const appProc = pod.container('app');
      await until(() => eventsOf(appProc).some((e) => e.event === 'call' && e.key === firstKey),
                  `the app to call DescribeRegions with ${firstKey}`);
      await pod.waitReady();
      log(`the SDK app called with ${firstKey} from ${CREDENTIALS_FILE}`);

      // A rotation: credsync (asked over its socket, as an app would) writes
      // the new key, the app reloads the file and calls with it.
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
      const refresh = await pod.container('credsync').exec(
        [CREDSYNC_PATH, 'refresh', '--profile', 'default', '--failed-key-id', firstKey]);
      assert.equal(refresh.code, 0, `credsync refresh: ${refresh.output}`);
      await until(() => eventsOf(appProc).some((e) => e.event === 'call' && e.key === rotated.access_key_id),
                  `the app to call with the rotated ${rotated.access_key_id}`);
      assert.deepEqual(eventsOf(appProc).filter((e) => e.event === 'failed'), []);
      firstKey = rotated.access_key_id;
      log(`rotation reached the app: ${rotated.access_key_id}`);

      const exits = await pod.stop();
      assert.equal(exits.credsync?.code, 0, `credsync on SIGTERM: ${JSON.stringify(exits.credsync)}`);
      assert.equal(exits.app?.code, 0, `the app on SIGTERM: ${JSON.stringify(exits.app)}`);
    });
  });

  test('init and several containers: credsync starts first, only the named containers get the file', async () => {
    // An app init container reads the key with the SDK (native mode: the
    // sidecar is already up when it runs); `exporter` is not named in
    // credsync.io/containers and must get nothing.
    const readKey = 'const C = require("@alicloud/credentials").default;' +
                    'new C().getCredential().then((c) => console.log("key " + c.accessKeyId));';
    const migrate = {
      name: 'migrate', image: 'registry.example/shop-app:1.0', workingDir: REPO,
      command: [process.execPath, '-e', readKey],
      env: [{ name: 'ALIBABA_CLOUD_ECS_METADATA_DISABLED', value: 'true' }],
      securityContext: { runAsUser: APP_UID, runAsGroup: APP_UID },
    };
    const exporter = {
      name: 'exporter', image: 'registry.example/exporter:1.0',
      command: ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.2; done'],
      securityContext: { runAsUser: 2000, runAsGroup: 2000 },
    };
    const deployment = injectableDeployment({
      name: 'shop-multi', namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, secret: SECRET, roleArn: ROLE_ARN,
      configMap: CONFIG_MAP, annotations: { 'credsync.io/containers': 'migrate,app' },
      spec: { initContainers: [migrate], containers: [sdkApp('app'), exporter], volumes: [emulatorCaVolume] },
    });
    const { pod: patched } = await inject(deployment, 'shop-multi');
    assert.deepEqual(patched.spec.initContainers.map((c) => c.name), ['credsync', 'migrate']);
    const injectedMount = (c) => (c.volumeMounts ?? []).some((m) => m.mountPath === '/var/run/credsync');
    const injectedEnv = (c) => (c.env ?? []).some((e) => e.name === 'ALIBABA_CLOUD_CREDENTIALS_FILE');
    for (const name of ['migrate', 'app']) {
      const c = findContainer(patched.spec, name);
      assert.ok(injectedMount(c) && injectedEnv(c), `${name} is named: it gets the mount and the variable`);
    }
    const ex = findContainer(patched.spec, 'exporter');
    assert.ok(!injectedMount(ex) && !injectedEnv(ex), 'exporter is not named: it gets nothing');

    await withPod({ pod: patched, name: 'shop-multi-7d4b9c8f6d-q8w3n' }, async (pod) => {
      const migrateProc = pod.container('migrate');
      assert.equal(migrateProc.exit?.code, 0);
      assert.match(migrateProc.output(), new RegExp(`^key ${firstKey}$`, 'm'),
                   'the init container read the key the native sidecar had written');
      await until(() => eventsOf(pod.container('app')).some((e) => e.event === 'call' && e.key === firstKey),
                  `the app to call with ${firstKey}`);
      const r = await pod.container('exporter').exec(['/bin/sh', '-c', 'test ! -e /var/run/credsync/credentials.ini']);
      assert.equal(r.code, 0, `exporter sees the credentials: ${r.output}`);
      const exits = await pod.stop();
      for (const name of ['credsync', 'app', 'exporter']) {
        assert.equal(exits[name]?.code, 0, `${name} on SIGTERM: ${JSON.stringify(exits[name])}`);
      }
    });
  });
});
