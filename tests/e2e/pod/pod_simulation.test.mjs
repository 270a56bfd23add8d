// Pod simulation end to end (issue 5): the rendered Helm chart's pods, run
// on this machine with their exact commands, args, env, volumes, users and
// probes (tests/e2e/pod/podsim.mjs), against credsync-emulator.
//
// run.sh starts this file inside new network, mount and PID namespaces, so
// the pods can bind the rendered 0.0.0.0:9808 and mount onto the rendered
// paths (/etc/credsync, /var/run/credsync, ...) without touching the host.
//
// Environment: CREDSYNC_BIN, CREDSYNC_EMULATOR (ctest sets them),
// CREDSYNC_E2E_LOG_DIR (each process's output), CREDSYNC_POD_CHART (the
// chart to render; default charts/credsync).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import YAML from 'yaml';

import { startEmulator } from '../node/emulator.mjs';
import { ACCOUNT, ISSUER } from '../node/sidecar.mjs';
import {
  REPO, allContainers, findContainer, findObject, isHelmTest, mintTokenWith, podFromWorkload, renderChart, startPod,
  suiteDirectories,
} from './podsim.mjs';

const CHART = path.resolve(process.env.CREDSYNC_POD_CHART || path.join(REPO, 'charts', 'credsync'));
const NAMESPACE = 'podsim';
const SECRET = 'acs/ram/user/podsim-app';
const PROFILE = 'default';
const ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-podsim`;
const PROVIDER_ARN = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-podsim`;
const CREDSYNC_PATH = '/usr/local/bin/credsync';
const INSTANCE = 'kst-hzzpodsim01';

const binary = process.env.CREDSYNC_BIN;
const { logDir, workDir } = suiteDirectories('credsync-podsim-');

const log = (line) => process.stdout.write(`# ${line}\n`);

let emu;
let world;        // {keyId, audiences, subjects}
const pods = [];  // every pod started, stopped in after()

function values(mode) {
  return {
    sidecar: { mode },
    rrsa: { roleArn: ROLE_ARN, oidcProviderArn: PROVIDER_ARN },
    config: {
      kms: { endpoints: [emu.url] },
      sts: { endpoint: emu.url },
      tls: { caBundle: emu.ca.toString('utf8') },
      profiles: [{ name: PROFILE, secretName: SECRET }],
    },
  };
}

function render(mode) {
  const objects = renderChart({ chart: CHART, release: `podsim-${mode}`, namespace: NAMESPACE,
                                values: values(mode), workDir: logDir });
  const deployment = findObject(objects, 'Deployment');
  const testPods = objects.filter((o) => o.kind === 'Pod' && isHelmTest(o));
  return { objects, deployment, pod: podFromWorkload(deployment), testPods };
}

// The service-account token audiences the rendered pods project, and the
// subjects (system:serviceaccount:NS:SA) they run as.
function identitiesOf(podSpecs) {
  const audiences = new Set();
  const subjects = new Set();
  for (const spec of podSpecs) {
    subjects.add(`system:serviceaccount:${NAMESPACE}:${spec.serviceAccountName ?? 'default'}`);
    for (const v of spec.volumes ?? []) {
      for (const s of v.projected?.sources ?? []) {
        if (s.serviceAccountToken) audiences.add(s.serviceAccountToken.audience ?? 'sts.aliyuncs.com');
      }
    }
  }
  return { audiences: [...audiences], subjects: [...subjects] };
}

const mintToken = (request) => mintTokenWith(emu, request);

// The moment credsync's startupProbe (HTTP /readyz) passes, the kubelet may
// start the next containers, and the helm test's check asks grpc.health.v1
// over the socket (`credsync probe ready`) once, without retrying: the two
// readiness views must agree from that moment on.
async function assertReadinessViewsAgree(pod, proc) {
  if (proc.container.command?.[0] !== CREDSYNC_PATH || !proc.container.args?.includes('run')) return;
  const { outputDir, config } = renderedConfig(pod, proc.container.name);
  const socket = config.control?.socket ?? `${outputDir}/credsync.sock`;
  const r = await proc.exec([CREDSYNC_PATH, 'probe', 'ready', '--socket', socket]);
  assert.equal(r.code, 0,
               `${pod.name}/${proc.name}: its startupProbe (GET /readyz) passed, but grpc.health.v1 on ${socket} ` +
               `(credsync probe ready, what the helm test's check runs) says: ${r.output.trim()}`);
}

// A Deployment's pod is named <deployment>-<pod-template-hash>-<suffix>.
function replicaName(deployment) {
  return `${deployment.metadata.name}-7d4b9c8f6d-x5k2p`;
}

function launchPod(objects, pod, name, extra = {}) {
  return startPod({
    objects, pod, name, namespace: NAMESPACE, workDir, logDir, mintToken, log,
    images: { [CREDSYNC_PATH]: binary }, afterStartup: assertReadinessViewsAgree, ...extra,
  }).then((p) => { pods.push(p); return p; });
}

// What the credsync container's rendered config says, read from the file
// its --config flag names, through the pod's volumes.
function renderedConfig(pod, containerName) {
  const c = findContainer(pod.spec, containerName);
  const args = [...(c.command ?? []), ...(c.args ?? [])];
  const i = args.indexOf('--config');
  assert.ok(i >= 0 && args[i + 1], `container ${containerName} runs without --config: ${args.join(' ')}`);
  const file = pod.hostPath(containerName, args[i + 1]);
  const config = YAML.parse(fs.readFileSync(file, 'utf8'));
  const outputDir = config.output?.directory ?? '/var/run/credsync';
  return { config, configPath: args[i + 1], outputDir, credentialsPath: `${outputDir}/credentials.ini` };
}

function keyIdsIn(ini) {
  return [...ini.matchAll(/^access_key_id\s*=\s*(\S+)\s*$/gm)].map((m) => m[1]);
}

async function waitForKey(file, keyId, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let content = '';
  for (;;) {
    try {
      content = fs.readFileSync(file, 'utf8');
      if (keyIdsIn(content).includes(keyId)) return content;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${file} did not get key ${keyId} within ${timeoutMs} ms; it has ${keyIdsIn(content)}`);
    }
    await delay(50);
  }
}

// Appends every log of the pod (and the emulator's) to a failure, and
// stops the pod whatever happens (the next pod binds the same ports).
async function withLogs(podRef, body) {
  try {
    return await body();
  } catch (err) {
    const pod = podRef();
    throw new Error(`${err.message}\n\nlogs in ${logDir}\n${pod ? pod.describeLogs() : '(no pod started)'}\n` +
                    `--- emulator\n${emu?.stderrTail(4096) ?? ''}`, { cause: err });
  } finally {
    await podRef()?.stop();
  }
}

// The probes of a running container answer on their rendered ports and paths.
async function assertProbes(pod, containerName, config) {
  const c = findContainer(pod.spec, containerName);
  const proc = pod.container(containerName);
  const want = { startupProbe: '/readyz', livenessProbe: '/healthz', readinessProbe: '/readyz' };
  const httpPort = Number(String(config.control?.http_address ?? '0.0.0.0:9808').split(':').pop());
  for (const [kind, wantPath] of Object.entries(want)) {
    const probe = c[kind];
    assert.ok(probe?.httpGet, `${containerName}.${kind}: want an httpGet probe, have ${JSON.stringify(probe)}`);
    assert.equal(probe.httpGet.path, wantPath, `${containerName}.${kind} path`);
    const result = await pod.probeOnce(proc, probe);
    assert.equal(result.status, 200, `${containerName}.${kind} GET ${wantPath} on port ${result.port}: ${result.detail}`);
    assert.equal(result.port, httpPort,
                 `${containerName}.${kind} port ${probe.httpGet.port} is not the config's http_address ${httpPort}`);
    log(`${pod.name}/${containerName} ${kind}: GET :${result.port}${wantPath} -> ${result.status}`);
  }
}

// The file is the kubelet-fsGroup-shared one: group fsGroup, no world access.
function assertFileOwnership(pod, file) {
  const st = fs.statSync(file);
  const fsGroup = pod.spec.securityContext?.fsGroup;
  if (fsGroup !== undefined) assert.equal(st.gid, fsGroup, `${file} group`);
  assert.equal(st.mode & 0o007, 0, `${file} mode ${(st.mode & 0o777).toString(8)} grants others access`);
  assert.equal(st.mode & 0o222, 0, `${file} mode ${(st.mode & 0o777).toString(8)} is writable`);
}

before(async () => {
  assert.ok(binary && fs.existsSync(binary), `CREDSYNC_BIN=${binary} does not name the credsync binary`);
  assert.ok(fs.existsSync(path.join(CHART, 'Chart.yaml')), `${CHART} is not a chart`);
  emu = await startEmulator({ kmsInstances: [INSTANCE] });
  log(`emulator on ${emu.url}; chart ${CHART}; logs in ${logDir}; work dir ${workDir}`);

  // The RRSA world: the provider trusts the audiences the chart projects,
  // the role trusts the service accounts its pods run as.
  const specs = [];
  for (const mode of ['native', 'classic']) {
    const r = render(mode);
    specs.push(r.pod.spec, ...r.testPods.map((p) => p.spec));
  }
  const { audiences, subjects } = identitiesOf(specs);
  assert.ok(audiences.length > 0, 'the chart projects no service-account token');
  await emu.admin('POST', '/admin/oidc-providers', { arn: PROVIDER_ARN, issuer: ISSUER, audiences });
  await emu.admin('POST', '/admin/roles', {
    arn: ROLE_ARN, oidc_provider_arn: PROVIDER_ARN, subjects, secrets: [SECRET],
  });
  const secret = await emu.admin('POST', '/admin/secrets', { name: SECRET });
  world = { keyId: secret.access_key_id, audiences, subjects };
  log(`world: role ${ROLE_ARN} trusts ${subjects.join(', ')} (audiences ${audiences.join(', ')}); ` +
      `${SECRET} is ${world.keyId}`);
});

after(async () => {
  for (const pod of pods.reverse()) await pod.stop().catch(() => {});
  if (emu) await emu.stop();
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe('the rendered chart, run as pods', { concurrency: false }, () => {
  test('native sidecar: file, probes, the helm test check, rotation', async () => {
    const r = render('native');
    const sidecar = (r.pod.spec.initContainers ?? []).find((c) => c.name === 'credsync');
    assert.ok(sidecar, 'native mode: credsync is not an init container');
    assert.equal(sidecar.restartPolicy, 'Always', 'native mode: credsync must have restartPolicy Always');
    assert.deepEqual(sidecar.command, [CREDSYNC_PATH]);

    let pod;
    await withLogs(() => pod, async () => {
      pod = await launchPod(r.objects, r.pod, replicaName(r.deployment));
      const { config, credentialsPath } = renderedConfig(pod, 'credsync');

      // The startup probe passed, so the file must be there with the key.
      const file = pod.hostPath('credsync', credentialsPath);
      const ini = fs.readFileSync(file, 'utf8');
      assert.deepEqual([...new Set(keyIdsIn(ini))], [world.keyId], `credentials.ini:\n${ini.replace(/secret.*/g, '…')}`);
      assertFileOwnership(pod, file);
      log(`${credentialsPath} has ${world.keyId}`);

      // The app container, when there is one, is pointed at that file.
      for (const c of allContainers(pod.spec)) {
        const v = (c.env ?? []).find((e) => e.name === 'ALIBABA_CLOUD_CREDENTIALS_FILE');
        if (v) assert.equal(v.value, credentialsPath, `${c.name}: ALIBABA_CLOUD_CREDENTIALS_FILE`);
      }

      await pod.waitReady();
      await assertProbes(pod, 'credsync', config);

      // The example app (if it ran) reads the file as its own user.
      const app = pod.containers.get('app');
      if (app) {
        await delay(500);
        assert.ok(app.alive(), `the app container exited: ${JSON.stringify(app.exit)}\n${app.output()}`);
        const r2 = await app.exec(['/bin/sh', '-c', `cat ${credentialsPath} >/dev/null`]);
        assert.equal(r2.code, 0, `the app cannot read ${credentialsPath}: ${r2.output}`);
        // The demo app is `credsync check --every`: its first line names the
        // key it found in the file, checked against what credsync published.
        const expected = new RegExp(`check: ready, generation \\d+: ${PROFILE} AccessKey ${world.keyId} in ${credentialsPath}`);
        for (let i = 0; i < 100 && !expected.test(app.output()); i++) await delay(100);
        assert.match(app.output(), expected);
      }

      // The helm test pod's check container, grafted into this pod: same
      // network, its own mount namespace seeing this pod's volumes where
      // credsync sees them.
      assert.ok(r.testPods.length > 0, 'the chart renders no helm test Pod');
      const check = findContainer(r.testPods[0].spec, 'check');
      const grafted = pod.graft(check, 'credsync');
      const exit = await grafted.wait(60000);
      assert.equal(exit.code, 0, `the helm test check exited ${JSON.stringify(exit)}:\n${grafted.output()}`);
      log(`helm test check against ${pod.name}: exit 0`);

      // Rotation: KMS rotates the secret, the app reports the old key.
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
      assert.notEqual(rotated.access_key_id, world.keyId);
      const refresh = await pod.container('credsync').exec(
        [CREDSYNC_PATH, 'refresh', '--profile', PROFILE, '--failed-key-id', world.keyId]);
      assert.equal(refresh.code, 0, `credsync refresh: ${refresh.output}`);
      assert.match(refresh.output, new RegExp(rotated.access_key_id));
      await waitForKey(file, rotated.access_key_id, 10000);
      assertFileOwnership(pod, file);
      log(`rotation: ${world.keyId} -> ${rotated.access_key_id}; file updated`);
      world.keyId = rotated.access_key_id;

      await assertProbes(pod, 'credsync', config);
      const exits = await pod.stop();
      assert.equal(exits.credsync?.code, 0, `credsync on SIGTERM: ${JSON.stringify(exits.credsync)}`);
      if (app) assert.equal(exits.app?.code, 0, `the demo app on SIGTERM: ${JSON.stringify(exits.app)}`);
    });
  });

  test('classic sidecar: credsync-init writes the file before credsync starts', async () => {
    const r = render('classic');
    const init = (r.pod.spec.initContainers ?? []).find((c) => c.name === 'credsync-init');
    assert.ok(init, 'classic mode: no credsync-init init container');
    assert.equal(init.restartPolicy, undefined, 'credsync-init must run to completion');
    const args = [...(init.command ?? []), ...(init.args ?? [])];
    assert.ok(args.includes('sync') && args.includes('--once'), `credsync-init runs ${args.join(' ')}`);
    assert.ok((r.pod.spec.containers ?? []).some((c) => c.name === 'credsync'),
              'classic mode: credsync is not a regular container');
    assert.ok(!(r.pod.spec.initContainers ?? []).some((c) => c.name === 'credsync'),
              'classic mode: credsync is also an init container');

    let pod;
    let seenBeforeMain = null;
    await withLogs(() => pod, async () => {
      pod = await launchPod(r.objects, r.pod, replicaName(r.deployment), {
        afterInit: async (p) => {
          assert.equal(p.containers.get('credsync'), undefined, 'credsync started before the init container ended');
          assert.equal(p.containers.get('credsync-init').exit?.code, 0);
          const { credentialsPath } = renderedConfig(p, 'credsync-init');
          const file = p.hostPath('credsync-init', credentialsPath);
          seenBeforeMain = keyIdsIn(fs.readFileSync(file, 'utf8'));
        },
      });
      assert.deepEqual([...new Set(seenBeforeMain)], [world.keyId],
                       'credsync-init did not write the key before the main container started');
      log(`credsync-init wrote ${world.keyId} before credsync started`);
      const { config, credentialsPath } = renderedConfig(pod, 'credsync');
      const file = pod.hostPath('credsync', credentialsPath);
      assertFileOwnership(pod, file);
      await pod.waitReady();
      await assertProbes(pod, 'credsync', config);

      const check = findContainer(r.testPods[0].spec, 'check');
      const grafted = pod.graft(check, 'credsync');
      const exit = await grafted.wait(60000);
      assert.equal(exit.code, 0, `the helm test check exited ${JSON.stringify(exit)}:\n${grafted.output()}`);

      // A rotation reaches the running classic sidecar too.
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
      const refresh = await pod.container('credsync').exec(
        [CREDSYNC_PATH, 'refresh', '--profile', PROFILE, '--failed-key-id', world.keyId]);
      assert.equal(refresh.code, 0, `credsync refresh: ${refresh.output}`);
      await waitForKey(file, rotated.access_key_id, 10000);
      world.keyId = rotated.access_key_id;
      const exits = await pod.stop();
      assert.equal(exits.credsync?.code, 0, `credsync on SIGTERM: ${JSON.stringify(exits.credsync)}`);
    });
  });

  test('KMS instance only: the client key from a Secret, mounted into credsync alone', async () => {
    // The console's client key and password, and the instance CA, in the
    // Secret a user creates with `kubectl create secret generic --from-file`.
    const key = await emu.admin('POST', '/admin/kms-instance/client-keys', { secrets: [SECRET] });
    const instance = emu.kmsInstance(INSTANCE);
    const secretName = 'podsim-kms-client-key';
    const objects = renderChart({
      chart: CHART, release: 'podsim-instances', namespace: NAMESPACE, workDir: logDir,
      values: {
        rrsa: { projectToken: false },
        config: {
          kms: {
            instances: [{
              // Loopback: the instance CA's certificate also names 127.0.0.1.
              endpoint: `https://127.0.0.1:${instance.port}`,
              regionId: 'cn-hangzhou',
              clientKeySecret: { name: secretName, caKey: 'ca.pem' },
            }],
          },
          profiles: [{ name: PROFILE, secretName: SECRET }],
        },
      },
    });
    objects.push({
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: secretName, namespace: NAMESPACE },
      data: {
        'clientKey.json': fs.readFileSync(key.client_key_file).toString('base64'),
        'password.txt': fs.readFileSync(key.password_file).toString('base64'),
        'ca.pem': instance.ca.toString('base64'),
      },
    });
    const deployment = findObject(objects, 'Deployment');
    const podSpec = podFromWorkload(deployment);
    assert.ok(!podSpec.spec.volumes.some((v) => v.name === 'credsync-rrsa-token'), 'instances only: no RRSA token');
    await emu.admin('DELETE', '/admin/counters');

    let pod;
    await withLogs(() => pod, async () => {
      pod = await launchPod(objects, podSpec, replicaName(deployment));
      const { config, credentialsPath } = renderedConfig(pod, 'credsync');
      const file = pod.hostPath('credsync', credentialsPath);
      const current = await emu.admin('GET', `/admin/secrets/${encodeURIComponent(SECRET)}`);
      assert.deepEqual([...new Set(keyIdsIn(fs.readFileSync(file, 'utf8')))], [current.versions.at(-1).access_key_id]);
      assertFileOwnership(pod, file);
      const counters = await emu.admin('GET', '/admin/counters');
      assert.ok((counters.actions?.[`${INSTANCE}/GetSecretValue`]?.requests ?? 0) >= 1,
                `the instance gateway was not asked: ${JSON.stringify(counters.actions)}`);
      const loaded = fs.readFileSync(pod.container('credsync').logFile, 'utf8');
      assert.match(loaded, new RegExp(`KMS instance client key loaded.*${key.key_id.replace(/\./g, '\\.')}`));
      log(`${credentialsPath} written from instance ${INSTANCE} with client key ${key.key_id}`);

      // The Secret's files: group fsGroup, 0440, read by the non-root credsync.
      const instanceConfig = config.kms.instances[0];
      for (const k of ['client_key_file', 'password_file', 'ca_file']) {
        assertFileOwnership(pod, pod.hostPath('credsync', instanceConfig[k]));
      }
      // The app container has no client key.
      const app = pod.containers.get('app');
      assert.ok(app, 'the example app runs');
      const dir = path.posix.dirname(path.posix.dirname(instanceConfig.client_key_file));
      const r2 = await app.exec(['/bin/sh', '-c', `test ! -e ${dir} && test ! -e ${instanceConfig.client_key_file}`]);
      assert.equal(r2.code, 0, `the app container sees ${dir}: ${r2.output}`);

      await pod.waitReady();
      await assertProbes(pod, 'credsync', config);
      const exits = await pod.stop();
      assert.equal(exits.credsync?.code, 0, `credsync on SIGTERM: ${JSON.stringify(exits.credsync)}`);
    });
  });

  test('the helm test pod, run as a pod of its own, passes', async () => {
    const r = render('native');
    assert.equal(r.testPods.length, 1, 'want one helm test Pod');
    const testPod = podFromWorkload(r.testPods[0]);
    let pod;
    await withLogs(() => pod, async () => {
      pod = await launchPod(r.objects, testPod, r.testPods[0].metadata.name);
      const exits = await pod.waitRegularContainers(120000);
      assert.ok(Object.keys(exits).includes('check'), `the test pod ran ${Object.keys(exits)}`);
      for (const [name, exit] of Object.entries(exits)) {
        assert.equal(exit.code, 0, `helm test container ${name} exited ${JSON.stringify(exit)}:\n` +
                                   pod.container(name).output());
      }
      log(`helm test pod ${pod.name}: ${Object.keys(exits).join(', ')} exited 0`);
      await pod.stop();
    });
  });
});
