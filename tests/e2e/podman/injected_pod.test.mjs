// The injector's proof in classic mode on a real container runtime (issue
// 18): a user's plain Deployment pod asking credsync.io/mode: classic is
// reviewed by `credsync injector review`, the patch is applied by
// fast-json-patch and validated by kubernetes-models
// (tests/e2e/injector/injection.mjs), and the patched pod is played by
// `podman kube play` with the credsync image built from deploy/Dockerfile
// and the SDK app image (run.sh builds both for this file and
// podman_pod.test.mjs) against credsync-emulator:
// - the injected credsync-init (`sync --once`) writes credentials.ini into
//   the injected in-memory volume before the app starts;
// - the injected credsync runs with the securityContext the injector gave
//   it (uid 65532, read-only root, no capabilities, no_new_privs) and its
//   probes answer on the injected port;
// - the app (another user, the official SDK's default chain) finds the file
//   by the variable the injector added and calls the cloud with its key, and
//   follows a rotation; every container stops cleanly on SIGTERM.
//
// What is adapted in the patched pod, after it was validated: what podman
// 4.3 cannot express, steps 1-5 of tests/e2e/podman/podman.mjs
// (adaptForPodman), the same as for the chart's pod. The test environment's
// endpoints and the emulator's CA reach credsync through the pod's own
// credsync.io/config-map ConfigMap (played from the same YAML).
//
// Environment: as podman_pod.test.mjs, and CREDSYNC_BIN (the credsync that
// answers the review; the image is built from the same tree).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';

import {
  EMULATOR_CA_VOLUME, admissionReview, applyAnswer, assertValidPod, emulatorConfigMap, findContainer,
  injectableDeployment, injectionWorld, keyIdsIn, podFromDeployment, runReview,
} from '../injector/injection.mjs';
import { startEmulator } from '../node/emulator.mjs';
import { ACCOUNT, ISSUER } from '../node/sidecar.mjs';
import {
  PODMAN_ENV, adaptForPodman, httpGet, mountEmptyDir, playedPod, podman, tokenDirectory, unmountEmptyDir, until,
} from './podman.mjs';

const { image: IMAGE, appImage: APP_IMAGE, podPrefix: POD_PREFIX, work: WORK, logDir: LOG_DIR } = PODMAN_ENV;
const BINARY = process.env.CREDSYNC_BIN;
const NAMESPACE = 'shop';
const SERVICE_ACCOUNT = 'shop';
const SECRET = 'acs/ram/user/injected-classic';
const ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-injected-classic`;
const PROVIDER_ARN = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-injected-classic`;
const CONFIG_MAP = 'credsync-emulator';
const APP_UID = 1000;
const SIDECAR_PORT = 9808;
const POD_NAME = `${POD_PREFIX}-injected-${process.pid}`;

const log = (line) => process.stdout.write(`# ${line}\n`);
const pod = playedPod(POD_NAME);

let emu;
let firstKey;
let tokenDir;
let volumeDir;
let patched;   // the patched Pod, before the podman adaptation
let manifest;  // the YAML file played
let played = false;

before(async () => {
  for (const [name, value] of Object.entries({ IMAGE, APP_IMAGE, WORK, BINARY })) {
    assert.ok(value, `${name} is not set: run through tests/e2e/podman/run.sh`);
  }
  emu = await startEmulator();
  firstKey = await injectionWorld(emu, { issuer: ISSUER, providerArn: PROVIDER_ARN, roleArn: ROLE_ARN,
                                         namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, secret: SECRET });

  const deployment = injectableDeployment({
    name: 'shop', namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, secret: SECRET, roleArn: ROLE_ARN,
    configMap: CONFIG_MAP, annotations: { 'credsync.io/mode': 'classic' },
    spec: {
      containers: [{
        name: 'app', image: APP_IMAGE, imagePullPolicy: 'Never',
        env: [
          { name: 'TARGET_ENDPOINT', value: emu.endpoint },
          { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/emulator/ca.pem' },
          { name: 'ALIBABA_CLOUD_ECS_METADATA_DISABLED', value: 'true' },
          { name: 'ALIBABA_CLOUD_CLI_PROFILE_DISABLED', value: 'true' },
          { name: 'CALL_INTERVAL_MS', value: '250' },
        ],
        securityContext: { runAsUser: APP_UID, runAsGroup: APP_UID },
        volumeMounts: [{ name: EMULATOR_CA_VOLUME, mountPath: '/etc/emulator', readOnly: true }],
      }],
      volumes: [{ name: EMULATOR_CA_VOLUME, configMap: { name: CONFIG_MAP } }],
    },
  });
  const original = podFromDeployment(deployment);
  const answer = runReview({
    binary: BINARY,
    flags: ['--image', IMAGE, '--image-pull-policy', 'Never', '--kms-region', 'cn-hangzhou',
            '--oidc-provider-arn', PROVIDER_ARN],
    review: admissionReview(original),
    file: path.join(LOG_DIR, 'injected-classic.review.json'),
  });
  ({ pod: patched } = applyAnswer(original, answer));
  await assertValidPod(patched);
  fs.writeFileSync(path.join(LOG_DIR, 'injected-classic.patched.json'), JSON.stringify(patched, null, 2));

  // The kubelet's side of the pod, for podman: a token for the projected
  // volumes, the in-memory volume with the injected fsGroup.
  tokenDir = await tokenDirectory(emu, path.join(WORK, 'injected-rrsa-token'),
                                  { namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT });
  volumeDir = path.join(WORK, 'injected-volume');
  fs.mkdirSync(volumeDir);
  mountEmptyDir(volumeDir, patched.spec.securityContext.fsGroup);

  const toPlay = structuredClone(patched);
  const spec = adaptForPodman(toPlay.spec, { tokenDir, volumeDir });
  const { labels, annotations } = patched.metadata;
  manifest = path.join(LOG_DIR, 'injected-classic-pod.yaml');
  fs.writeFileSync(manifest, [
    emulatorConfigMap({ name: CONFIG_MAP, namespace: NAMESPACE, emu }),
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD_NAME, labels, annotations }, spec },
  ].map((m) => YAML.stringify(m)).join('---\n'));
  log(`emulator on ${emu.url}; ${SECRET} is ${firstKey}; pod ${POD_NAME} from ${manifest}`);
});

after(async () => {
  if (played) {
    for (const name of ['credsync', 'app']) {
      const out = pod.logsOf(name);
      fs.writeFileSync(path.join(LOG_DIR, `injected-${name}.log`), `${out.stdout}${out.stderr}`);
    }
    pod.remove();
  }
  if (volumeDir) unmountEmptyDir(volumeDir);
  await emu?.stop();
});

describe('an injected pod in classic mode under podman kube play', { concurrency: false }, () => {
  test('the patch: credsync-init first, credsync last, the app pointed at the file', () => {
    const init = patched.spec.initContainers?.[0];
    assert.equal(init?.name, 'credsync-init');
    assert.equal(init.restartPolicy, undefined, 'classic: credsync-init runs to completion');
    assert.deepEqual(init.args.slice(0, 2), ['sync', '--once']);
    assert.equal(patched.spec.containers.at(-1).name, 'credsync');
    assert.equal(patched.spec.containers.at(-1).image, IMAGE);
    const app = findContainer(patched.spec, 'app');
    assert.ok(app.env.some((e) => e.name === 'ALIBABA_CLOUD_CREDENTIALS_FILE'));
  });

  test('kube play: credsync-init writes the key, then credsync and the app run', async () => {
    played = true;
    const playedAt = Math.floor(Date.now() / 1000) - 1;
    const play = podman(['kube', 'play', manifest], { allowFailure: true, timeoutMs: 180000 });
    assert.equal(play.code, 0, `podman kube play: ${play.stderr}\n${pod.logsOf('credsync-init').stderr}`);
    const initExit = await pod.initExit('credsync-init', playedAt);
    assert.equal(initExit.code, 0, `credsync-init (sync --once) failed: ${pod.logsOf('credsync-init').stderr}`);
    const ini = path.join(volumeDir, 'credentials.ini');
    assert.deepEqual(keyIdsIn(fs.readFileSync(ini, 'utf8')), [firstKey]);
    const st = fs.statSync(ini);
    assert.equal(st.gid, patched.spec.securityContext.fsGroup, 'credentials.ini group: the injected fsGroup');
    assert.equal(st.mode & 0o007, 0, 'credentials.ini is readable by others');
    for (const name of ['credsync', 'app']) {
      await until(() => pod.inspect(name).State.Status === 'running', `${name} to run`);
    }
  });

  test('the injected credsync runs as the injector said: uid 65532, read-only, no capabilities; probes answer', async () => {
    const info = pod.inspect('credsync');
    assert.equal(info.HostConfig.ReadonlyRootfs, true, 'the root filesystem is not read-only');
    const status = fs.readFileSync(`/proc/${info.State.Pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    const credsync = findContainer(patched.spec, 'credsync');
    for (const kind of ['livenessProbe', 'readinessProbe']) {
      const probe = credsync[kind].httpGet;
      const port = (credsync.ports ?? []).find((p) => p.name === probe.port)?.containerPort ?? probe.port;
      assert.equal(port, SIDECAR_PORT, `${kind} port`);
      const r = await until(async () => {
        const got = await httpGet(port, probe.path);
        return got.status === 200 ? got : null;
      }, `${kind} GET ${probe.path} to answer 200`, 20000);
      log(`${kind}: GET :${port}${probe.path} -> ${r.status}`);
    }
  });

  test('the app calls the cloud with the key the sidecar fetched, and follows a rotation', async () => {
    await until(() => pod.events('app').some((e) => e.event === 'call' && e.key === firstKey),
                `the app to call DescribeRegions with ${firstKey}`);
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
    const refresh = pod.execIn('credsync', ['credsync', 'refresh', '--profile', 'default', '--failed-key-id', firstKey]);
    assert.equal(refresh.code, 0, `credsync refresh: ${refresh.stdout}${refresh.stderr}`);
    await until(() => pod.events('app').some((e) => e.event === 'call' && e.key === rotated.access_key_id),
                `the app to call with the rotated ${rotated.access_key_id}`, 30000);
    assert.deepEqual(pod.events('app').filter((e) => e.event === 'failed'), []);
    log(`the app called with ${firstKey}, then with the rotated ${rotated.access_key_id}`);
  });

  test('every container stops cleanly on SIGTERM', () => {
    podman(['pod', 'stop', '--time', '10', POD_NAME], { timeoutMs: 60000 });
    for (const name of ['credsync', 'app']) {
      const state = pod.inspect(name).State;
      assert.equal(state.ExitCode, 0, `${name} exited ${state.ExitCode} (137: it ignored SIGTERM and was killed)`);
    }
  });
});
