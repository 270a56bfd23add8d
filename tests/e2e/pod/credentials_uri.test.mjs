// Zero-code rotation through ALIBABA_CLOUD_CREDENTIALS_URI (issue 19), pod by
// pod: credsync's loopback local API reached by an app that uses nothing but
// the URI its environment names, in
//   1. a plain Deployment's pod injected by `credsync injector review`
//      (credsync.io/credentials-uri, --local-api-refetch-within 10s), through a
//      rotation: the app uses the new key within refetch_within of credsync
//      writing it, with no code of its own for rotation;
//   2. the chart's Deployment with localApi.enabled and app.credentialsUri: the
//      path secret from the rendered Secret by secretKeyRef, the URI by $(VAR)
//      expansion.
//
// The app is tests/e2e/pod/uri_app.mjs: the credentials-go URI provider's
// behaviour (sources cited there), since no Go, Python or Java SDK can be
// installed for these tests and the Node SDK refuses an empty SecurityToken.
// The pods run in the pod simulation (tests/e2e/pod/podsim.mjs) against
// credsync-emulator, as injected_pod.test.mjs and pod_simulation.test.mjs run
// theirs; run.sh gives this file network, mount and PID namespaces of its own:
//   CREDSYNC_BIN=... CREDSYNC_EMULATOR=... tests/e2e/pod/run.sh tests/e2e/pod/credentials_uri.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';

import {
  EMULATOR_CA_VOLUME, admissionReview, applyAnswer, assertValidPod, emulatorConfigMap, findContainer,
  injectableDeployment, injectedConfig, injectionWorld, keyIdsIn, podFromDeployment, runReview,
} from '../injector/injection.mjs';
import { startEmulator } from '../node/emulator.mjs';
import { ACCOUNT, ISSUER, until } from '../node/sidecar.mjs';
import {
  REPO, findObject, mintTokenWith, podFromWorkload, renderChart, startPod, suiteDirectories,
} from './podsim.mjs';

const CREDSYNC_PATH = '/usr/local/bin/credsync';
const URI_APP = path.join(REPO, 'tests/e2e/pod/uri_app.mjs');
const LOCAL_API_PORT = 8190;
const REFETCH_WITHIN_S = 10;
// What the bound may exceed refetch_within by: the app's call interval
// (250 ms), one signed call to the emulator, and `credsync refresh` through
// nsenter between the moment taken before it and credsync's write.
const SLACK_MS = 1500;
// credsync's Expiration margin for credentials-go (User-Agent "Golang/"):
// its URI provider fetches again once Expiration - now <= 180 s.
const GO_MARGIN_S = 180;
const GO_UA = 'AlibabaCloud (linux; amd64) Golang/1.22.5 Credentials/1.4.9 TeaDSL/1';

// What the app container must not have: each would make an earlier
// provider of the SDKs' default chain answer before the URI.
const SHADOWING_VARS = ['ALIBABA_CLOUD_CREDENTIALS_FILE', 'ALIBABA_CLOUD_ACCESS_KEY_ID', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
                        'ALIBABA_CLOUD_ROLE_ARN', 'ALIBABA_CLOUD_OIDC_PROVIDER_ARN', 'ALIBABA_CLOUD_OIDC_TOKEN_FILE'];

// The injected pod's world.
const NAMESPACE = 'shop';
const SERVICE_ACCOUNT = 'shop';
const SECRET = 'acs/ram/user/uri-shop';
const ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-uri-injected`;
const PROVIDER_ARN = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-uri-injected`;
const CONFIG_MAP = 'credsync-emulator';
const APP_UID = 1000;

// The chart's world.
const CHART = path.resolve(process.env.CREDSYNC_POD_CHART || path.join(REPO, 'charts', 'credsync'));
const CHART_NAMESPACE = 'podsim';
const CHART_RELEASE = 'podsim-uri';
const CHART_SECRET = 'acs/ram/user/uri-chart';
const CHART_ROLE_ARN = `acs:ram::${ACCOUNT}:role/credsync-uri-chart`;
const CHART_PROVIDER_ARN = `acs:ram::${ACCOUNT}:oidc-provider/ack-rrsa-uri-chart`;

const binary = process.env.CREDSYNC_BIN;
const { logDir, workDir } = suiteDirectories('credsync-podsim-uri-');
const log = (line) => process.stdout.write(`# ${line}\n`);

let emu;
let injectedKey;
let chartKey;

const mintToken = (request) => mintTokenWith(emu, request);
const eventsOf = (proc) => proc.output(1 << 20).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const envOf = (c) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));

// A GET of the local API as credentials-go sends it: {status, headers, body}.
function getUri(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { 'User-Agent': GO_UA }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

async function withPod(options, body) {
  let pod;
  try {
    pod = await startPod({ workDir, logDir, mintToken, log, images: { [CREDSYNC_PATH]: binary }, ...options });
    return await body(pod);
  } catch (err) {
    throw new Error(`${err.message}\n\nlogs in ${logDir}\n${pod ? pod.describeLogs() : ''}\n` +
                    `--- emulator\n${emu?.stderrTail(4096) ?? ''}`, { cause: err });
  } finally {
    await pod?.stop();
  }
}

// The app's environment, in the spec and as the pod simulation resolved it
// for the running process: the URI and the metadata switch, nothing that
// shadows the URI; with `noMount`, not the credentials volume either (the
// injector's contract; the chart's example app keeps it for `credsync check`).
function assertUriOnly(specContainer, proc, { noMount = false } = {}) {
  const env = envOf(specContainer);
  assert.ok(env.ALIBABA_CLOUD_CREDENTIALS_URI, `${specContainer.name} has no ALIBABA_CLOUD_CREDENTIALS_URI`);
  assert.deepEqual(env.ALIBABA_CLOUD_ECS_METADATA_DISABLED,
                   { name: 'ALIBABA_CLOUD_ECS_METADATA_DISABLED', value: 'true' });
  for (const name of SHADOWING_VARS) {
    assert.equal(env[name], undefined, `${specContainer.name} has ${name}`);
    if (proc) assert.equal(proc.env[name], undefined, `${specContainer.name} runs with ${name}`);
  }
  if (noMount) {
    assert.ok(!(specContainer.volumeMounts ?? []).some((m) => m.mountPath === '/var/run/credsync'),
              `${specContainer.name} mounts the credentials volume`);
  }
}

// credsync said where it listens, and no container's output (credsync's,
// the app's, the execs') carries the path secret.
function assertLogsClean(pod, pathSecret) {
  const credsyncLog = fs.readFileSync(pod.container('credsync').logFile, 'utf8');
  assert.match(credsyncLog, new RegExp(`local api listening.*127\\.0\\.0\\.1:${LOCAL_API_PORT}`));
  const files = fs.readdirSync(logDir).filter((f) => f.startsWith(`${pod.name}-`) && f.endsWith('.log'));
  assert.ok(files.length >= 2, `the pod's logs: ${files}`);
  for (const f of files) {
    assert.ok(!fs.readFileSync(path.join(logDir, f), 'utf8').includes(pathSecret), `${f} carries the path secret`);
  }
}

before(async () => {
  assert.ok(binary && fs.existsSync(binary), `CREDSYNC_BIN=${binary} does not name the credsync binary`);
  emu = await startEmulator();
  injectedKey = await injectionWorld(emu, { issuer: ISSUER, providerArn: PROVIDER_ARN, roleArn: ROLE_ARN,
                                            namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, secret: SECRET });
  log(`emulator on ${emu.url}; ${SECRET} is ${injectedKey}; logs in ${logDir}`);
});

after(async () => {
  if (emu) await emu.stop();
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe('the credentials URI in a pod', { concurrency: false }, () => {
  test('injected pod: the app reads the key through the URI and uses the rotated one within refetch_within',
       async () => {
    const app = {
      name: 'app',
      image: 'registry.example/shop-app:1.0',
      // The app's own environment names no credentials at all: the injector
      // adds the URI and the metadata switch.
      command: [process.execPath, URI_APP],
      env: [
        { name: 'TARGET_ENDPOINT', value: emu.endpoint },
        { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/emulator/ca.pem' },
        { name: 'CALL_INTERVAL_MS', value: '250' },
      ],
      securityContext: { runAsUser: APP_UID, runAsGroup: APP_UID, runAsNonRoot: true },
      volumeMounts: [{ name: EMULATOR_CA_VOLUME, mountPath: '/etc/emulator', readOnly: true }],
    };
    const deployment = injectableDeployment({
      name: 'shop-uri', namespace: NAMESPACE, serviceAccount: SERVICE_ACCOUNT, secret: SECRET, roleArn: ROLE_ARN,
      configMap: CONFIG_MAP, annotations: { 'credsync.io/credentials-uri': 'app' },
      spec: {
        containers: [app],
        volumes: [{ name: EMULATOR_CA_VOLUME,
                    configMap: { name: CONFIG_MAP, items: [{ key: 'ca.pem', path: 'ca.pem' }] } }],
      },
    });
    const pod = podFromDeployment(deployment);
    const answer = runReview({
      binary, review: admissionReview(pod), file: path.join(logDir, 'shop-uri.review.json'),
      flags: ['--image', 'registry.example/credsync:0.1.0', '--kms-region', 'cn-hangzhou',
              '--oidc-provider-arn', PROVIDER_ARN, '--local-api-refetch-within', `${REFETCH_WITHIN_S}s`],
    });
    const { pod: patched, ops } = applyAnswer(pod, answer);
    await assertValidPod(patched);
    fs.writeFileSync(path.join(logDir, 'shop-uri.patched.json'), JSON.stringify(patched, null, 2));
    log(`shop-uri: ${ops.length} patch operations; warnings ${JSON.stringify(answer.response.warnings ?? [])}`);

    // The patch: the app gets the URI (its secret the one credsync is given)
    // and the metadata switch, never the file, its mount or RRSA.
    const sidecar = patched.spec.initContainers?.[0];
    assert.equal(sidecar?.name, 'credsync');
    assert.equal(sidecar.restartPolicy, 'Always');
    const patchedApp = findContainer(patched.spec, 'app');
    assertUriOnly(patchedApp, null, { noMount: true });
    const uri = envOf(patchedApp).ALIBABA_CLOUD_CREDENTIALS_URI.value;
    const m = /^http:\/\/127\.0\.0\.1:(\d+)\/([A-Za-z0-9_-]+)\/v1\/credentials\/default$/.exec(uri);
    assert.ok(m, `ALIBABA_CLOUD_CREDENTIALS_URI ${uri.replace(/\/[^/]{20,}\//, '/…/')}`);
    assert.equal(Number(m[1]), LOCAL_API_PORT);
    const pathSecret = m[2];
    assert.ok(pathSecret.length >= 32, 'the path secret is shorter than 32 characters');
    assert.equal(envOf(sidecar).CREDSYNC_LOCAL_API_PATH_SECRET?.value, pathSecret,
                 'credsync is not given the secret of the app\'s URI');
    assert.deepEqual(injectedConfig(sidecar).local_api, {
      listen: `127.0.0.1:${LOCAL_API_PORT}`, path_secret_env: 'CREDSYNC_LOCAL_API_PATH_SECRET',
      refetch_within: `${REFETCH_WITHIN_S}s`,
    });

    const objects = [
      emulatorConfigMap({ name: CONFIG_MAP, namespace: NAMESPACE, emu }),
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kube-root-ca.crt', namespace: NAMESPACE },
        data: { 'ca.crt': emu.ca.toString('utf8') } },
    ];
    await withPod({ objects, pod: patched, name: 'shop-uri-7d4b9c8f6d-x5k2p', namespace: NAMESPACE }, async (p) => {
      const appProc = p.container('app');
      assertUriOnly(patchedApp, appProc, { noMount: true });
      const start = await until(() => eventsOf(appProc).find((e) => e.event === 'start'), 'the app\'s first line');
      assert.deepEqual(start.shadowedBy, [], 'an earlier provider of the default chain would answer first');

      // The app's first use: a DescribeRegions signed with the key it fetched.
      const firstUse = await until(() => eventsOf(appProc).find((e) => e.event === 'use'),
                                   `the app to use a key (${injectedKey})`);
      assert.equal(firstUse.key, injectedKey);
      const [firstFetch] = eventsOf(appProc).filter((e) => e.event === 'fetch');
      assert.equal(firstFetch.status, 200);
      // Expiration = floor(now) + 180 + refetch_within for a Go client.
      const lead = Date.parse(firstFetch.expiration) / 1000 - Math.floor(firstFetch.at / 1000);
      assert.ok(lead >= GO_MARGIN_S + REFETCH_WITHIN_S && lead <= GO_MARGIN_S + REFETCH_WITHIN_S + 1,
                `Expiration ${firstFetch.expiration} is ${lead} s after the fetch; want ` +
                `${GO_MARGIN_S} + ${REFETCH_WITHIN_S}`);
      log(`the app used ${injectedKey} from the URI (Expiration ${firstFetch.expiration})`);

      // Rotation right after the app's fetch (the worst case for the bound):
      // KMS rotates, credsync is asked to refresh as the existing tests do;
      // the app's code does nothing but keep calling.
      const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
      assert.notEqual(rotated.access_key_id, injectedKey);
      const beforeWrite = Date.now();  // credsync writes after this moment
      const refresh = await p.container('credsync').exec(
        [CREDSYNC_PATH, 'refresh', '--profile', 'default', '--failed-key-id', injectedKey]);
      assert.equal(refresh.code, 0, `credsync refresh: ${refresh.output}`);
      assert.match(refresh.output, new RegExp(rotated.access_key_id));
      const written = Date.now();
      // The local API serves the written key at once.
      const served = await getUri(uri);
      assert.equal(served.status, 200);
      assert.match(served.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(served.headers['cache-control'], 'no-store');
      const doc = JSON.parse(served.body);
      assert.equal(doc.Code, 'Success');
      assert.equal(doc.SecurityToken, '');
      assert.equal(doc.AccessKeyId, rotated.access_key_id, 'the local API does not serve the key credsync just wrote');
      log(`credsync wrote ${rotated.access_key_id} within ${written - beforeWrite} ms; the URI serves it`);

      const newUse = await until(
        () => eventsOf(appProc).find((e) => e.event === 'use' && e.key === rotated.access_key_id),
        `the app to use ${rotated.access_key_id}`, REFETCH_WITHIN_S * 1000 + 10000, 50);
      const latency = newUse.at - beforeWrite;
      const newFetch = eventsOf(appProc).find((e) => e.event === 'fetch' && e.key === rotated.access_key_id);
      log(`the app fetched ${rotated.access_key_id} ${newFetch.at - beforeWrite} ms and used it ${latency} ms ` +
          `after credsync was asked to write it (refetch_within ${REFETCH_WITHIN_S} s + slack ${SLACK_MS} ms)`);
      assert.ok(latency <= REFETCH_WITHIN_S * 1000 + SLACK_MS,
                `the app used the new key ${latency} ms after it was written, more than refetch_within ` +
                `${REFETCH_WITHIN_S} s + ${SLACK_MS} ms`);

      const events = eventsOf(appProc);
      assert.deepEqual(events.filter((e) => e.event === 'failed'), [], 'the app failed a use');
      // From the first use of the new key on, the old one is never used again.
      const uses = events.filter((e) => e.event === 'use');
      const switchAt = uses.findIndex((e) => e.key === rotated.access_key_id);
      assert.deepEqual(uses.slice(switchAt).filter((e) => e.key !== rotated.access_key_id), []);
      // The app fetched on its own schedule, once per refetch_within (the
      // Go provider's 180 s margin against the Expiration answered), not on
      // every use.
      const fetches = events.filter((e) => e.event === 'fetch');
      assert.deepEqual(fetches.map((e) => e.key), [injectedKey, rotated.access_key_id],
                       `the app's fetches: ${JSON.stringify(fetches)}`);
      const gap = fetches[1].at - fetches[0].at;
      assert.ok(gap >= (REFETCH_WITHIN_S - 1) * 1000 && gap <= REFETCH_WITHIN_S * 1000 + SLACK_MS,
                `the app fetched again after ${gap} ms; want about refetch_within ${REFETCH_WITHIN_S} s`);
      injectedKey = rotated.access_key_id;
      assertLogsClean(p, pathSecret);

      const exits = await p.stop();
      assert.equal(exits.credsync?.code, 0, `credsync on SIGTERM: ${JSON.stringify(exits.credsync)}`);
      assert.equal(exits.app?.code, 0, `the app on SIGTERM: ${JSON.stringify(exits.app)}`);
    });
  });

  test('the chart with localApi.enabled and app.credentialsUri: the secret by secretKeyRef, the URI by $(VAR)',
       async () => {
    const values = {
      sidecar: { mode: 'native' },
      rrsa: { roleArn: CHART_ROLE_ARN, oidcProviderArn: CHART_PROVIDER_ARN },
      config: {
        kms: { endpoints: [emu.url] },
        sts: { endpoint: emu.url },
        tls: { caBundle: emu.ca.toString('utf8') },
        profiles: [{ name: 'default', secretName: CHART_SECRET }],
      },
      localApi: { enabled: true, refetchWithin: `${REFETCH_WITHIN_S}s` },
      app: { credentialsUri: true },
    };
    const objects = renderChart({ chart: CHART, release: CHART_RELEASE, namespace: CHART_NAMESPACE, values,
                                  workDir: logDir });
    const deployment = findObject(objects, 'Deployment');
    const secretObject = findObject(objects, 'Secret', (o) => o.metadata.name.endsWith('-local-api'));
    const secretKey = 'path-secret';
    const pathSecret = Buffer.from(secretObject.data[secretKey], 'base64').toString('utf8');
    assert.match(pathSecret, /^[A-Za-z0-9._~-]{32,}$/, 'the rendered path secret');
    const pod = podFromWorkload(deployment);

    // The world: the role trusts the chart's service account, with the
    // audiences its projected token carries.
    const audiences = new Set();
    for (const v of pod.spec.volumes ?? []) {
      for (const s of v.projected?.sources ?? []) {
        if (s.serviceAccountToken) audiences.add(s.serviceAccountToken.audience ?? 'sts.aliyuncs.com');
      }
    }
    await emu.admin('POST', '/admin/oidc-providers', { arn: CHART_PROVIDER_ARN, issuer: ISSUER,
                                                       audiences: [...audiences] });
    await emu.admin('POST', '/admin/roles', {
      arn: CHART_ROLE_ARN, oidc_provider_arn: CHART_PROVIDER_ARN, secrets: [CHART_SECRET],
      subjects: [`system:serviceaccount:${CHART_NAMESPACE}:${pod.spec.serviceAccountName ?? 'default'}`],
    });
    chartKey = (await emu.admin('POST', '/admin/secrets', { name: CHART_SECRET })).access_key_id;

    // The rendered pod: the path secret only by reference, in credsync and
    // in the app; the URI built from it by $(VAR) expansion.
    assert.ok(!JSON.stringify(deployment).includes(pathSecret), 'the path secret is written into the pod spec');
    const secretRef = { secretKeyRef: { name: secretObject.metadata.name, key: secretKey } };
    const credsync = findContainer(pod.spec, 'credsync');
    const renderedApp = findContainer(pod.spec, 'app');
    for (const c of [credsync, renderedApp]) {
      assert.deepEqual(envOf(c).CREDSYNC_LOCAL_API_PATH_SECRET?.valueFrom, secretRef, `${c.name}: the path secret`);
    }
    assertUriOnly(renderedApp);
    const appEnv = renderedApp.env.map((e) => e.name);
    assert.ok(appEnv.indexOf('CREDSYNC_LOCAL_API_PATH_SECRET') < appEnv.indexOf('ALIBABA_CLOUD_CREDENTIALS_URI'),
              'the URI comes before the variable it expands');
    assert.equal(envOf(renderedApp).ALIBABA_CLOUD_CREDENTIALS_URI.value,
                 `http://127.0.0.1:${LOCAL_API_PORT}/$(CREDSYNC_LOCAL_API_PATH_SECRET)/v1/credentials/default`);
    const configMap = findObject(objects, 'ConfigMap', (o) => typeof o.data?.['config.yaml'] === 'string' &&
                                                             o.data['config.yaml'].includes('local_api'));
    assert.deepEqual(YAML.parse(configMap.data['config.yaml']).local_api, {
      listen: `127.0.0.1:${LOCAL_API_PORT}`, path_secret_env: 'CREDSYNC_LOCAL_API_PATH_SECRET',
      refetch_within: `${REFETCH_WITHIN_S}s`,
    });

    // The chart's example app is `credsync check`, which reads the file and
    // never the URI (docs/install.md, "The credentials URI"): its command is
    // replaced by the URI client; its env, user and mounts stay as rendered.
    const app = { ...renderedApp, command: [process.execPath, URI_APP] };
    delete app.args;
    const spec = { ...pod.spec, containers: pod.spec.containers.map((c) => (c.name === 'app' ? app : c)) };

    await withPod({ objects, pod: { ...pod, spec }, name: `${deployment.metadata.name}-7d4b9c8f6d-x5k2p`,
                    namespace: CHART_NAMESPACE }, async (p) => {
      const appProc = p.container('app');
      const uri = `http://127.0.0.1:${LOCAL_API_PORT}/${pathSecret}/v1/credentials/default`;
      assert.equal(appProc.env.ALIBABA_CLOUD_CREDENTIALS_URI, uri,
                   'the app\'s URI, expanded, is not built from the rendered Secret');
      assert.equal(p.container('credsync').env.CREDSYNC_LOCAL_API_PATH_SECRET, pathSecret);
      assertUriOnly(app, appProc);

      const use = await until(() => eventsOf(appProc).find((e) => e.event === 'use'), `the app to use ${chartKey}`);
      assert.equal(use.key, chartKey);
      const start = eventsOf(appProc).find((e) => e.event === 'start');
      assert.deepEqual(start.shadowedBy, [], 'an earlier provider of the default chain would answer first');
      const fetch = eventsOf(appProc).find((e) => e.event === 'fetch');
      const lead = Date.parse(fetch.expiration) / 1000 - Math.floor(fetch.at / 1000);
      assert.ok(lead >= GO_MARGIN_S + REFETCH_WITHIN_S && lead <= GO_MARGIN_S + REFETCH_WITHIN_S + 1,
                `Expiration ${fetch.expiration} is ${lead} s after the fetch: localApi.refetchWithin not applied?`);
      const file = p.hostPath('credsync', '/var/run/credsync/credentials.ini');
      assert.deepEqual(keyIdsIn(fs.readFileSync(file, 'utf8')), [chartKey], 'the URI and the file disagree');
      assert.deepEqual(eventsOf(appProc).filter((e) => e.event === 'failed'), []);
      log(`the chart's app used ${chartKey} through the URI (secret from Secret ${secretObject.metadata.name})`);

      // Only that secret opens the path: another one of the same form is a
      // bodiless 404.
      const other = await getUri(uri.replace(pathSecret, 'x'.repeat(pathSecret.length)));
      assert.equal(other.status, 404);
      assert.equal(other.body, '');
      assert.equal(other.headers['cache-control'], 'no-store');
      assertLogsClean(p, pathSecret);

      const exits = await p.stop();
      assert.equal(exits.credsync?.code, 0, `credsync on SIGTERM: ${JSON.stringify(exits.credsync)}`);
      assert.equal(exits.app?.code, 0, `the app on SIGTERM: ${JSON.stringify(exits.app)}`);
    });
  });
});
