// The chart's pod on a real container runtime (issue 14): charts/credsync
// rendered in classic sidecar mode, with the credsync image built from
// deploy/Dockerfile, played by `podman kube play` next to an app container
// (Debian's Node.js and the official @alicloud/credentials, app/app.mjs)
// against credsync-emulator on the host. run.sh builds both images and runs
// this file in a network namespace of its own.
//
// What the pod proves, in the real containers:
// - credsync-init (`sync --once`) writes credentials.ini into the shared
//   in-memory volume before the app starts; credsync then runs as the image's
//   user (65532) with a read-only root filesystem, no capabilities and
//   no_new_privs, and its image holds no shell;
// - the probes answer: the kubelet's HTTP probes and /metrics on the pod's
//   port, and `credsync probe live|ready` and `credsync check` run inside the
//   credsync container (podman exec), as exec probes would;
// - the app (another user, reading the file through the pod's fsGroup) calls
//   the emulator's DescribeRegions with the key in the file, and keeps
//   working across a scheduled rotation (credsync rewrites the file, the app
//   picks it up) and an emergency rotation (the old key revoked: the app's
//   call fails, it calls Refresh over the socket, rebuilds and retries);
// - the chart's demo app (`credsync check --every`, in the credsync image)
//   reports the key; every container stops cleanly on SIGTERM.
//
// What the test adapts in the rendered pod, because podman 4.3 cannot
// express it, and nothing else (the chart itself is not changed): steps 1-5
// of tests/e2e/podman/podman.mjs (adaptForPodman: host network, restart
// policy, the projected token and the in-memory emptyDir as hostPath
// directories, fsGroup as a supplemental group), and
// 6. The app container is added (as a user would add theirs), with the env
//    and mounts of the chart's includable templates, the emulator's address
//    and CA; the CA is a hostPath mount.
// Probes are not run by podman 4.3: the test calls them itself.
//
// Environment (run.sh): CREDSYNC_PODMAN_IMAGE, CREDSYNC_PODMAN_APP_IMAGE,
// CREDSYNC_PODMAN_POD_PREFIX, CREDSYNC_PODMAN_WORK, CONTAINERS_CONF, and the
// e2e runner's (CREDSYNC_EMULATOR, CREDSYNC_E2E_LOG_DIR, NODE_EXTRA_CA_CERTS).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';

import { startEmulator } from '../node/emulator.mjs';
import { ACCOUNT, ISSUER } from '../node/sidecar.mjs';
import { REPO, findObject, isHelmTest, podFromWorkload, renderChart } from '../pod/podsim.mjs';
import {
  PODMAN_ENV, adaptForPodman as adaptSpec, httpGet, mountEmptyDir, playedPod, podman, tokenDirectory, unmountEmptyDir,
  until,
} from './podman.mjs';

const { image: IMAGE, appImage: APP_IMAGE, podPrefix: POD_PREFIX, work: WORK, logDir: LOG_DIR } = PODMAN_ENV;
const CHART = path.join(REPO, 'charts', 'credsync');
const NAMESPACE = 'podman';
const RELEASE = 'e2e';
const SECRET = 'acs/ram/user/podman-app';
const PROFILE = 'default';
const ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-podman`;
const PROVIDER_ARN = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-podman`;
const APP_UID = 1000;
const POD_NAME = `${POD_PREFIX}-${process.pid}`;

const log = (line) => process.stdout.write(`# ${line}\n`);

const pod = playedPod(POD_NAME);
const { logsOf, inspect, execIn } = pod;
const appEvents = () => pod.events('app');

const keyIdsIn = (ini) => [...ini.matchAll(/^access_key_id\s*=\s*(\S+)\s*$/gm)].map((m) => m[1]);

let emu;
let tokenDir;
let volumeDir;
let rendered;
let played = false;

// The rendered Deployment's pod, adapted for podman as the header says.
function adaptForPodman(objects) {
  const deployment = findObject(objects, 'Deployment');
  const { metadata, spec } = structuredClone(podFromWorkload(deployment));
  const appTemplate = spec.containers.find((c) => c.name === 'app');
  assert.ok(appTemplate, 'the chart rendered no demo app (app.enabled)');

  adaptSpec(spec, { tokenDir, volumeDir });                        // 1-5

  spec.volumes.push({ name: 'emulator-ca', hostPath: { path: path.dirname(emu.caFile), type: 'Directory' } });
  spec.containers.push({                                            // 6
    name: 'app',
    image: APP_IMAGE,
    imagePullPolicy: 'Never',
    env: [
      ...appTemplate.env,
      { name: 'TARGET_ENDPOINT', value: emu.endpoint },
      { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/emulator/ca.pem' },
      { name: 'CREDSYNC_SOCKET', value: '/var/run/credsync/credsync.sock' },
      { name: 'ALIBABA_CLOUD_ECS_METADATA_DISABLED', value: 'true' },
      { name: 'ALIBABA_CLOUD_CLI_PROFILE_DISABLED', value: 'true' },
      { name: 'CALL_INTERVAL_MS', value: '250' },
    ],
    securityContext: { ...appTemplate.securityContext, runAsUser: APP_UID, runAsGroup: APP_UID },
    volumeMounts: [...appTemplate.volumeMounts, { name: 'emulator-ca', mountPath: '/etc/emulator', readOnly: true }],
  });
  // The chart's demo app keeps its name under another: `app` is ours.
  appTemplate.name = 'demo';

  const configMap = findObject(objects, 'ConfigMap');
  return [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: configMap.metadata.name }, data: configMap.data },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD_NAME, labels: metadata.labels }, spec },
  ];
}

before(async () => {
  for (const [name, value] of Object.entries({ IMAGE, APP_IMAGE, WORK })) {
    assert.ok(value, `${name} is not set: run through tests/e2e/podman/run.sh`);
  }
  emu = await startEmulator();
  fs.chmodSync(path.dirname(emu.caFile), 0o755);
  fs.chmodSync(emu.caFile, 0o644);

  // The in-memory volume, as the kubelet makes an emptyDir for a pod with
  // an fsGroup: group fsGroup, setgid, 0777.
  const [repository, tag] = IMAGE.split(/:(?=[^:]+$)/);
  const values = {
    sidecar: { mode: 'classic' },
    image: { repository, tag, pullPolicy: 'IfNotPresent' },
    rrsa: { roleArn: ROLE_ARN, oidcProviderArn: PROVIDER_ARN },
    app: { intervalSeconds: 1 },
    config: {
      kms: { endpoints: [emu.url] },
      sts: { endpoint: emu.url },
      tls: { caBundle: emu.ca.toString('utf8') },
      refresh: { interval: '2s', jitter: 0 },
      profiles: [{ name: PROFILE, secretName: SECRET }],
    },
  };
  const objects = renderChart({ chart: CHART, release: RELEASE, namespace: NAMESPACE, values, workDir: LOG_DIR });
  assert.ok(objects.some((o) => o.kind === 'Pod' && isHelmTest(o)), 'the chart renders no helm test pod');
  const fsGroup = podFromWorkload(findObject(objects, 'Deployment')).spec.securityContext.fsGroup;
  volumeDir = path.join(WORK, 'credsync-volume');
  fs.mkdirSync(volumeDir);
  mountEmptyDir(volumeDir, fsGroup);

  // RRSA: the provider trusts the audience the chart projects, the role the
  // pod's service account, and the secret is readable by the role.
  const serviceAccount = podFromWorkload(findObject(objects, 'Deployment')).spec.serviceAccountName;
  await emu.admin('POST', '/admin/oidc-providers', { arn: PROVIDER_ARN, issuer: ISSUER, audiences: ['sts.aliyuncs.com'] });
  await emu.admin('POST', '/admin/roles', {
    arn: ROLE_ARN, oidc_provider_arn: PROVIDER_ARN,
    subjects: [`system:serviceaccount:${NAMESPACE}:${serviceAccount}`], secrets: [SECRET],
  });
  tokenDir = await tokenDirectory(emu, path.join(WORK, 'rrsa-token'), { namespace: NAMESPACE, serviceAccount });

  const manifests = adaptForPodman(objects);
  const file = path.join(LOG_DIR, 'podman-pod.yaml');
  fs.writeFileSync(file, manifests.map((m) => YAML.stringify(m)).join('---\n'));
  rendered = { objects, manifests, file };
  log(`emulator on ${emu.url}; pod ${POD_NAME} from ${file}`);
});

after(async () => {
  if (played) {
    for (const name of ['credsync', 'demo', 'app']) {
      const out = logsOf(name);
      fs.writeFileSync(path.join(LOG_DIR, `${name}.log`), `${out.stdout}${out.stderr}`);
    }
    pod.remove();
  }
  if (volumeDir) unmountEmptyDir(volumeDir);
  await emu?.stop();
});

describe('the chart\'s pod under podman kube play', { concurrency: false }, () => {
  let secret;
  let firstKey;

  test('kube play: credsync-init writes the file, then credsync, the demo and the app run', async () => {
    secret = await emu.admin('POST', '/admin/secrets', { name: SECRET });
    firstKey = secret.access_key_id;
    played = true;
    const playedAt = Math.floor(Date.now() / 1000) - 1;
    const play = podman(['kube', 'play', rendered.file], { allowFailure: true, timeoutMs: 180000 });
    assert.equal(play.code, 0, `podman kube play: ${play.stderr}\n${logsOf('credsync-init').stderr}`);

    const initExit = await pod.initExit('credsync-init', playedAt);
    assert.equal(initExit.code, 0, 'credsync-init (sync --once) failed');
    const ini = fs.readFileSync(path.join(volumeDir, 'credentials.ini'), 'utf8');
    assert.deepEqual(keyIdsIn(ini), [firstKey]);
    for (const name of ['credsync', 'demo', 'app']) {
      await until(() => inspect(name).State.Status === 'running', `${name} to run`);
    }
  });

  test('credsync runs as the image\'s user, read-only, without capabilities, and the image has no shell', () => {
    const info = inspect('credsync');
    assert.equal(info.HostConfig.ReadonlyRootfs, true, 'the root filesystem is not read-only');
    const status = fs.readFileSync(`/proc/${info.State.Pid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(status, /^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
    assert.match(status, /^CapEff:\s+0+$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    // The image's own user, read from the image (not the pod spec).
    const image = JSON.parse(podman(['image', 'inspect', IMAGE]).stdout)[0];
    assert.equal(image.Config.User, '65532:65532');
    const shell = execIn('credsync', ['/bin/sh', '-c', 'true']);
    assert.notEqual(shell.code, 0, 'the credsync image has a shell');
    const write = execIn('credsync', ['/usr/local/bin/credsync', 'sync', '--once', '--config',
                                      '/etc/credsync/config.yaml', '--output-dir', '/usr/local', '--timeout', '20s']);
    assert.equal(write.code, 1, `credsync could write outside its volume: ${write.stdout}${write.stderr}`);
    assert.match(write.stderr, /Read-only file system/);
  });

  test('the probes answer: HTTP on the pod\'s port, exec inside the container', async () => {
    // The port the probes name (`probes`), as the rendered config binds it.
    const credsync = rendered.manifests[1].spec.containers.find((c) => c.name === 'credsync');
    assert.equal(credsync.readinessProbe.httpGet.port, 'probes');
    const config = YAML.parse(rendered.manifests[0].data['config.yaml']);
    const port = Number(config.control.http_address.split(':').pop());
    for (const [probePath, body] of [['/healthz', /ok|serving|live/i], ['/readyz', /ready|ok|serving/i]]) {
      const r = await until(async () => {
        const got = await httpGet(port, probePath);
        return got.status === 200 ? got : null;
      }, `GET ${probePath} to answer 200`, 20000);
      assert.match(r.body, body);
    }
    const metrics = await httpGet(port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^credsync_/m);
    for (const probe of ['live', 'ready']) {
      const r = execIn('credsync', ['credsync', 'probe', probe]);
      assert.equal(r.code, 0, `credsync probe ${probe}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout.trim(), `${probe}: serving`);
    }
    const check = execIn('credsync', ['credsync', 'check']);
    assert.equal(check.code, 0, `credsync check: ${check.stdout}${check.stderr}`);
    assert.match(check.stdout, new RegExp(`^check: ready, generation \\d+: ${PROFILE} AccessKey ${firstKey} in /var/run/credsync/credentials.ini$`, 'm'));
  });

  test('the app calls the cloud with the file\'s key; the demo app reports it', async () => {
    await until(() => appEvents().some((e) => e.event === 'call' && e.key === firstKey),
                `the app to call DescribeRegions with ${firstKey}`);
    await until(() => logsOf('demo').stdout.includes(`${PROFILE} AccessKey ${firstKey} in`),
                'the demo app to report the key');
    const ini = path.join(volumeDir, 'credentials.ini');
    const st = fs.statSync(ini);
    assert.equal(st.mode & 0o007, 0, 'credentials.ini is readable by others');
    assert.equal(st.gid, rendered.manifests[1].spec.securityContext.fsGroup, 'credentials.ini group');
  });

  test('a scheduled rotation reaches the app with no failed call', async () => {
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
    assert.notEqual(rotated.access_key_id, firstKey);
    await until(() => keyIdsIn(fs.readFileSync(path.join(volumeDir, 'credentials.ini'), 'utf8'))
      .includes(rotated.access_key_id), 'credsync to write the rotated key', 30000);
    await until(() => appEvents().some((e) => e.event === 'call' && e.key === rotated.access_key_id),
                'the app to call with the rotated key', 30000);
    const events = appEvents();
    assert.ok(events.some((e) => e.event === 'reloaded' && e.key === rotated.access_key_id), JSON.stringify(events.slice(-5)));
    assert.deepEqual(events.filter((e) => e.event === 'failed' || e.event === 'refreshed'), []);
    secret = rotated;
    log(`scheduled rotation: ${firstKey} -> ${rotated.access_key_id}; the app follows`);
  });

  test('an emergency rotation: the app\'s call fails, Refresh, retry, and it works again', async () => {
    await emu.admin('DELETE', '/admin/counters');
    const previous = secret.access_key_id;
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`,
                                    { revoke_previous: true });
    const refreshed = await until(() => appEvents().find((e) => e.event === 'refreshed'),
                                  'the app to call Refresh', 30000);
    assert.equal(refreshed.failed, previous);
    assert.equal(refreshed.key, rotated.access_key_id);
    await until(() => appEvents().some((e) => e.event === 'call' && e.key === rotated.access_key_id),
                'the app to call with the new key');
    assert.deepEqual(appEvents().filter((e) => e.event === 'failed'), [],
                     'a call failed for good (the app did not recover within one retry)');
    const counters = (await emu.admin('GET', '/admin/counters')).actions ?? {};
    assert.ok((counters.GetSecretValue?.requests ?? 0) >= 1, JSON.stringify(counters));
    const check = execIn('credsync', ['credsync', 'check']);
    assert.equal(check.code, 0, `credsync check: ${check.stdout}${check.stderr}`);
    assert.match(check.stdout, new RegExp(`AccessKey ${rotated.access_key_id} in`));
    log(`emergency rotation: ${previous} revoked -> ${rotated.access_key_id}; the app recovered with Refresh`);
  });

  test('every container stops cleanly on SIGTERM', () => {
    podman(['pod', 'stop', '--time', '10', POD_NAME], { timeoutMs: 60000 });
    for (const name of ['credsync', 'demo', 'app']) {
      const state = inspect(name).State;
      assert.equal(state.ExitCode, 0, `${name} exited ${state.ExitCode} (137: it ignored SIGTERM and was killed)`);
    }
  });
});
