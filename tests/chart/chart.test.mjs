// Tests of the Helm chart charts/credsync, in the manner of vault-helm's
// test/unit/*.bats: `helm lint --strict`, `helm template` once per values
// toggle with assertions on the fields that matter, the values schema
// rejecting bad input, every rendered object checked against the Kubernetes
// models (the Prometheus Operator's by structure), and every rendered
// config.yaml accepted by `credsync validate`. Also the packaging: every
// values file of charts/credsync/ci, Chart.yaml's metadata, the README's
// generated values table (scripts/chart-readme.mjs), and `helm package`.
//
// Run by run.sh (ctest label "chart"); needs CREDSYNC_BIN (the built sidecar)
// and the npm packages `yaml` and `kubernetes-models` (npm ci at the top).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const chart = path.join(repo, 'charts', 'credsync');
const helmSh = path.join(repo, 'scripts', 'helm.sh');
// The values files of charts/credsync/ci, the folder chart-testing (ct lint,
// ct install) renders the chart with, one file per scenario; the tests
// below render every one of them, and use two as the base of the others.
const ciDir = path.join(chart, 'ci');
const minimal = path.join(ciDir, 'minimal-values.yaml');
const full = path.join(ciDir, 'full-values.yaml');
const credsyncBin = process.env.CREDSYNC_BIN;

const OUTPUT_DIR = '/var/run/credsync';
const TOKEN_DIR = '/var/run/secrets/credsync/rrsa';
const KMS_INSTANCES_DIR = '/var/run/secrets/credsync/kms-instances';
const RRSA_ENV = {
  ALIBABA_CLOUD_ROLE_ARN: 'acs:ram::123456789012:role/credsync-demo',
  ALIBABA_CLOUD_OIDC_PROVIDER_ARN: 'acs:ram::123456789012:oidc-provider/ack-rrsa-c0123456789abcdef',
  ALIBABA_CLOUD_OIDC_TOKEN_FILE: `${TOKEN_DIR}/token`,
};

// ---------------------------------------------------------------------------
// helm

function helm(args) {
  const r = spawnSync(helmSh, args, { encoding: 'utf8', cwd: repo, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// `helm template` arguments for values files and --set pairs.
function valueArgs({ files = [minimal], set = {}, setString = {}, setJson = {} } = {}) {
  const args = [];
  for (const f of files) args.push('-f', f);
  for (const [k, v] of Object.entries(set)) args.push('--set', `${k}=${v}`);
  for (const [k, v] of Object.entries(setString)) args.push('--set-string', `${k}=${v}`);
  for (const [k, v] of Object.entries(setJson)) args.push('--set-json', `${k}=${JSON.stringify(v)}`);
  return args;
}

// The cluster version (.Capabilities.KubeVersion) a render sees unless a
// test names another: one with native sidecars, so that the default
// sidecar.mode auto means native whatever version this helm binary assumes
// by default (its client-go version).
const KUBE_VERSION = '1.30.0';

// `helm template` of the chart as release rel in namespace apps on
// Kubernetes `kubeVersion`; `args` are further helm flags (e.g.
// --skip-schema-validation).
const templateArgs = ({ args = [], kubeVersion = KUBE_VERSION, ...opts } = {}) =>
  ['template', 'rel', chart, '--namespace', 'apps', '--kube-version', kubeVersion, ...args, ...valueArgs(opts)];

// Renders deploy/examples/myapp, a chart that adds credsync to its own pod
// with the named templates, with this chart as its dependency; returns
// helm's result.
function renderParent(args = [], kubeVersion = KUBE_VERSION) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-parent-'));
  try {
    const parent = path.join(tmp, 'myapp');
    fs.cpSync(path.join(repo, 'deploy', 'examples', 'myapp'), parent, { recursive: true });
    fs.cpSync(chart, path.join(parent, 'charts', 'credsync'), { recursive: true });
    return helm(['template', 'rel', parent, '--kube-version', kubeVersion, ...args]);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
const parseObjects = (stdout) => YAML.parseAllDocuments(stdout).map((d) => d.toJS()).filter(Boolean);

// Renders the chart and returns the parsed objects; throws with helm's
// message when rendering fails.
function render(opts = {}) {
  const r = helm(templateArgs(opts));
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return YAML.parseAllDocuments(r.stdout)
    .map((d) => {
      assert.deepEqual(d.errors, [], 'rendered YAML parses');
      return d.toJS();
    })
    .filter((o) => o !== null);
}

// Renders expecting failure; returns helm's stderr.
function renderFails(opts = {}) {
  const r = helm(templateArgs(opts));
  assert.notEqual(r.status, 0, 'helm template should fail');
  return r.stderr;
}

const find = (objs, kind, name) => {
  const hits = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(hits.length, 1, `exactly one ${kind}${name ? ` ${name}` : ''}`);
  return hits[0];
};
const none = (objs, kind) => assert.equal(objs.filter((o) => o.kind === kind).length, 0, `no ${kind}`);
const deploymentPod = (objs) => find(objs, 'Deployment').spec.template.spec;
const testPod = (objs) => find(objs, 'Pod').spec;
const byName = (list, name) => {
  const hit = (list ?? []).find((c) => c.name === name);
  assert.ok(hit, `${name} is present`);
  return hit;
};
const names = (list) => (list ?? []).map((c) => c.name);
const envMap = (container) =>
  Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
const configOf = (objs) => YAML.parse(find(objs, 'ConfigMap').data['config.yaml']);
const allContainers = (pod) => [...(pod.initContainers ?? []), ...pod.containers];

// Every label of every object, a pod template's included, as [where, key, value].
const allLabels = (objs) => objs.flatMap((o) => [
  ...Object.entries(o.metadata.labels ?? {}).map(([k, v]) => [`${o.kind} ${o.metadata.name}`, k, v]),
  ...Object.entries(o.spec?.template?.metadata?.labels ?? {}).map(([k, v]) => [`${o.kind} ${o.metadata.name} pod template`, k, v]),
]);
// A label value as the API server takes it: at most 63 characters, empty or
// [A-Za-z0-9._-] beginning and ending with a letter or digit.
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
function assertLabelValues(objs) {
  for (const [where, k, v] of allLabels(objs)) {
    assert.equal(typeof v, 'string', `${where} label ${k} is a string`);
    assert.ok(v.length <= 63, `${where} label ${k}=${v} is longer than 63 characters`);
    assert.match(v, LABEL_VALUE, `${where} label ${k}=${v} is not a valid label value`);
    assert.ok(!v.includes('sha256'), `${where} label ${k}=${v} carries the digest`);
  }
}

// ---------------------------------------------------------------------------
// Checks shared by many scenarios

const EXPECTED_CONTAINER_SECURITY = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function assertCredsyncContainer(c, { native, httpPort = 9808, tcpPort = null, projectToken = true, image } = {}) {
  assert.equal(c.name, 'credsync');
  if (image) assert.equal(c.image, image);
  if (native) assert.equal(c.restartPolicy, 'Always', 'a native sidecar keeps running');
  else assert.equal(c.restartPolicy, undefined, 'an ordinary container has no restartPolicy');
  assert.deepEqual(c.command, ['/usr/local/bin/credsync']);
  assert.deepEqual(c.args, ['run', '--config', '/etc/credsync/config.yaml']);

  const ports = Object.fromEntries(c.ports.map((p) => [p.name, p.containerPort]));
  const expectedPorts = { probes: httpPort };
  if (tcpPort !== null) expectedPorts.grpc = tcpPort;
  assert.deepEqual(ports, expectedPorts);

  assert.deepEqual(c.startupProbe.httpGet, { path: '/readyz', port: 'probes' });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'probes' });
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'probes' });
  assert.deepEqual(c.securityContext, EXPECTED_CONTAINER_SECURITY);
  assertCredsyncEnvAndMounts(c, { projectToken });
}

function assertCredsyncEnvAndMounts(c, { projectToken = true } = {}) {
  const env = envMap(c);
  assert.deepEqual(env.POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
  if (projectToken) {
    assert.equal(env.ALIBABA_CLOUD_OIDC_TOKEN_FILE, `${TOKEN_DIR}/token`);
    assert.match(env.ALIBABA_CLOUD_ROLE_ARN, /^acs:ram::\d+:role\//);
    assert.match(env.ALIBABA_CLOUD_OIDC_PROVIDER_ARN, /^acs:ram::\d+:oidc-provider\//);
  } else {
    for (const k of Object.keys(RRSA_ENV)) assert.equal(env[k], undefined, `${k} is left to the webhook`);
  }
  const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.name, m]));
  assert.deepEqual(mounts['credsync-config'], { name: 'credsync-config', mountPath: '/etc/credsync', readOnly: true });
  assert.deepEqual(mounts.credsync, { name: 'credsync', mountPath: OUTPUT_DIR });
  if (projectToken) {
    assert.deepEqual(mounts['credsync-rrsa-token'], { name: 'credsync-rrsa-token', mountPath: TOKEN_DIR, readOnly: true });
  } else {
    assert.equal(mounts['credsync-rrsa-token'], undefined);
  }
}

function assertVolumes(pod, { sizeLimit = '4Mi', projectToken = true, configMap = 'rel-credsync', expirationSeconds = 3600 } = {}) {
  const vols = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
  assert.deepEqual(vols.credsync.emptyDir, { medium: 'Memory', sizeLimit });
  assert.deepEqual(vols['credsync-config'].configMap, { name: configMap });
  if (projectToken) {
    assert.deepEqual(vols['credsync-rrsa-token'].projected, {
      sources: [{ serviceAccountToken: { audience: 'sts.aliyuncs.com', expirationSeconds, path: 'token' } }],
    });
    // Least privilege (docs/design.md §6.2): only credsync containers see the token.
    for (const c of allContainers(pod)) {
      const mountsToken = (c.volumeMounts ?? []).some((m) => m.name === 'credsync-rrsa-token');
      assert.equal(mountsToken, c.name.startsWith('credsync'), `token mounted in ${c.name}: ${mountsToken}`);
      const env = envMap(c);
      if (!c.name.startsWith('credsync')) {
        for (const k of Object.keys(RRSA_ENV)) assert.equal(env[k], undefined, `${k} not in ${c.name}`);
      }
    }
  } else {
    assert.equal(vols['credsync-rrsa-token'], undefined);
  }
}

// Pod level, credsync needs only the fsGroup of credentials.ini; non-root and
// seccomp are on every container, so the restricted profile holds per
// container and an app's own pod settings (root included) can stay.
function assertPodSecurity(pod, fsGroup = 65532) {
  assert.deepEqual(pod.securityContext, { fsGroup });
  for (const c of allContainers(pod)) {
    assert.deepEqual(c.securityContext, EXPECTED_CONTAINER_SECURITY, `securityContext of ${c.name}`);
  }
}

function assertApp(pod) {
  const app = byName(pod.containers, 'app');
  // The demo app is credsync's own check (no shell in the image).
  assert.deepEqual(app.command, ['/usr/local/bin/credsync']);
  assert.deepEqual(app.args, ['check', '--socket', `${OUTPUT_DIR}/credsync.sock`, '--every', '60s']);
  assert.deepEqual(envMap(app), { ALIBABA_CLOUD_CREDENTIALS_FILE: `${OUTPUT_DIR}/credentials.ini` });
  assert.deepEqual(app.volumeMounts, [{ name: 'credsync', mountPath: OUTPUT_DIR, readOnly: true }]);
}

// The Secrets the tests' values name in config.kms.instances[].clientKeySecret,
// as a cluster would hold them. The client key is the official Java SDK's
// test fixture (password 1234), which credsync's unit tests load too.
const testdata = path.join(repo, 'tests', 'unit', 'alibaba', 'testdata');
const CLIENT_KEY = fs.readFileSync(path.join(testdata, 'java_sdk_client_key.json'), 'utf8');
const CLIENT_KEY_PASSWORD = fs.readFileSync(path.join(testdata, 'java_sdk_client_key_password.txt'), 'utf8');
const INSTANCE_CA = '-----BEGIN CERTIFICATE-----\nMIIBTestOnlyInstanceCA\n-----END CERTIFICATE-----\n';
const TEST_SECRETS = {
  'kms-client-key': { 'clientKey.json': CLIENT_KEY, 'password.txt': CLIENT_KEY_PASSWORD, 'ca.pem': INSTANCE_CA },
  'kms-client-key-2': { 'clientKey_KAAP.2.json': CLIENT_KEY, 'clientKey_KAAP.2_Password.txt': CLIENT_KEY_PASSWORD },
  'payments-kms-a': { 'ck.json': CLIENT_KEY, 'pw.txt': CLIENT_KEY_PASSWORD, 'PrivateKmsCA.pem': INSTANCE_CA },
  'payments-kms-b': { 'clientKey.json': CLIENT_KEY, 'password.txt': CLIENT_KEY_PASSWORD },
};

// Runs `credsync validate` on the ConfigMap's config.yaml as a pod would see
// it: the ConfigMap's keys are files of one directory (/etc/credsync) and
// the projected volume credsync-kms-instances is built from `secrets` item by
// item (key -> path). Both directories live under a temporary one and the
// config's paths are rewritten to it, so the check also proves that every
// file config.yaml names is one the volumes provide. validate opens each
// instance's client key with its password.
function runValidate(objs, extraEnv = {}, secrets = TEST_SECRETS) {
  assert.ok(credsyncBin, 'CREDSYNC_BIN is set (ctest sets it to the built credsync)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-chart-'));
  try {
    const configDir = path.join(dir, 'config');
    const instancesDir = path.join(dir, 'kms-instances');
    fs.mkdirSync(configDir);
    const data = find(objs, 'ConfigMap').data;
    for (const [key, value] of Object.entries(data)) fs.writeFileSync(path.join(configDir, key), value);
    const pod = objs.find((o) => o.kind === 'Deployment')?.spec.template.spec ?? objs.find((o) => o.kind === 'Pod')?.spec;
    const volume = (pod?.volumes ?? []).find((v) => v.name === 'credsync-kms-instances');
    for (const { secret } of volume?.projected.sources ?? []) {
      for (const { key, path: rel } of secret.items) {
        const value = secrets[secret.name]?.[key];
        assert.ok(value !== undefined, `the test cluster has Secret ${secret.name} with key ${key}`);
        fs.mkdirSync(path.dirname(path.join(instancesDir, rel)), { recursive: true });
        fs.writeFileSync(path.join(instancesDir, rel), value, { mode: 0o440 });
      }
    }
    const file = path.join(configDir, 'config.yaml');
    fs.writeFileSync(file, data['config.yaml']
      .replaceAll('/etc/credsync/', `${configDir}/`)
      .replaceAll(`${KMS_INSTANCES_DIR}/`, `${instancesDir}/`));
    const env = { PATH: process.env.PATH, ...RRSA_ENV, ...extraEnv };
    return spawnSync(credsyncBin, ['validate', '--config', file], { encoding: 'utf8', env });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// The ConfigMap's config.yaml goes through the real binary: the chart must
// never render a config the sidecar refuses.
function assertValidates(objs, extraEnv = {}, secrets = TEST_SECRETS) {
  const r = runValidate(objs, extraEnv, secrets);
  assert.equal(r.status, 0, `credsync validate refused the rendered config: ${r.stderr.trim()}`);
  assert.match(r.stdout, /^config OK/);
}

// KMS instances: the Secret volume is mounted, read-only, into every
// credsync container of the pod and into no other container.
function assertKmsInstancesMounted(pod, expected = true) {
  const vol = (pod.volumes ?? []).find((v) => v.name === 'credsync-kms-instances');
  assert.equal(Boolean(vol), expected, `volume credsync-kms-instances ${expected ? 'present' : 'absent'}`);
  for (const c of allContainers(pod)) {
    const mounts = (c.volumeMounts ?? []).filter((m) => m.name === 'credsync-kms-instances');
    if (expected && c.name.startsWith('credsync')) {
      assert.deepEqual(mounts, [{ name: 'credsync-kms-instances', mountPath: KMS_INSTANCES_DIR, readOnly: true }], c.name);
    } else {
      assert.deepEqual(mounts, [], `no client keys in ${c.name}`);
    }
  }
}

// Every object goes through the typed Kubernetes model of its
// apiVersion/kind (types, required fields, enums). The models do not reject
// unknown fields; the assertions above cover the fields we set.
const modelCache = new Map();
async function assertModels(objs) {
  for (const obj of objs) {
    // kubernetes-models has no Prometheus Operator or cert-manager types:
    // checked by structure.
    if (obj.apiVersion === 'monitoring.coreos.com/v1') {
      assert.ok(MONITORING_CHECKS[obj.kind], `a check for ${obj.kind}`);
      MONITORING_CHECKS[obj.kind](obj, objs);
      continue;
    }
    if (obj.apiVersion === 'cert-manager.io/v1') {
      assert.ok(CERT_MANAGER_CHECKS[obj.kind], `a check for ${obj.kind}`);
      CERT_MANAGER_CHECKS[obj.kind](obj, objs);
      continue;
    }
    const mod = obj.apiVersion;
    if (!modelCache.has(mod)) modelCache.set(mod, await import(`kubernetes-models/${mod}`));
    const Model = modelCache.get(mod)[obj.kind];
    assert.ok(Model, `kubernetes-models has ${obj.apiVersion} ${obj.kind}`);
    assert.doesNotThrow(() => new Model(obj).validate(), `${obj.kind} ${obj.metadata?.name} is a valid ${obj.apiVersion} ${obj.kind}`);
  }
}

// ---------------------------------------------------------------------------
// Prometheus: the PodMonitor and PrometheusRule (metrics.*)

// A markdown section of `text` from its heading to the next heading of the
// same or a higher level, and the rows of its first table as cells.
function markdownSection(text, heading) {
  const start = text.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `section "${heading}"`);
  const level = heading.match(/^#+/)[0].length;
  const rest = text.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`\\n#{1,${level}} `));
  return end < 0 ? rest : rest.slice(0, end);
}
function tableRows(section) {
  const lines = section.split('\n').filter((l) => l.startsWith('|'));
  return lines.slice(2).map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}
// GitHub's anchor of a heading.
const slug = (heading) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
const anchorsOf = (markdown) => new Set([...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));

// The metric families credsync exports, from the Metrics table of
// docs/operations.md: name -> { type, labels: label -> [values] } (values
// only where the table lists them). A test below checks the table against
// the names the sidecar's source registers.
const OPERATIONS_MD = fs.readFileSync(path.join(repo, 'docs', 'operations.md'), 'utf8');
const DOC_METRICS = new Map(tableRows(markdownSection(OPERATIONS_MD, '### Metrics')).map(([name, type, labels]) => {
  const label = new Map();
  for (const m of labels.matchAll(/`([a-z_]+)`(?:\s*\(([^)]*)\))?/g)) {
    label.set(m[1], m[2] ? [...m[2].matchAll(/`([^`]+)`/g)].map((v) => v[1]) : null);
  }
  return [`credsync_${name.replace(/`/g, '')}`, { type, labels: label }];
}));
// The values values.yaml documents with a helm-docs "# --" comment, in file
// order: a key with one documents everything under it, any other map is
// walked into. The `yaml` parser hangs the comment of a map's first key on
// the map.
function documentedValues(file = path.join(chart, 'values.yaml')) {
  const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'));
  const documented = [];
  const visit = (map, where) => map.items.forEach((pair, index) => {
    const key = `${where}${pair.key.value}`;
    const comment = pair.key.commentBefore || (index === 0 ? map.commentBefore : '') || '';
    if (/(^|\n) *-- \S/.test(comment)) documented.push(key);
    else if (YAML.isMap(pair.value)) visit(pair.value, `${key}.`);
  });
  visit(doc.contents, '');
  return documented;
}
const DOC_ALERTS = tableRows(markdownSection(OPERATIONS_MD, '### Alerts')).map(([name]) => name.replace(/`/g, ''));

// A Prometheus duration (the Prometheus Operator's Duration), and its seconds.
const PROM_DURATION = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
const PROM_UNITS = { y: 31536000, w: 604800, d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
const promSeconds = (d) => [...d.matchAll(/(\d+)(ms|[ywdhms])/g)].reduce((t, [, n, u]) => t + Number(n) * PROM_UNITS[u], 0);

// Whether a label selector (matchLabels, matchExpressions) selects `labels`.
function selects(selector, labels) {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const { key, operator, values } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    if (operator === 'In' && !(has && values.includes(labels[key]))) return false;
    if (operator === 'NotIn' && has && values.includes(labels[key])) return false;
    if (operator === 'Exists' && !has) return false;
    if (operator === 'DoesNotExist' && has) return false;
    assert.ok(['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(operator), operator);
  }
  return true;
}

// A PodMonitor: scrapes /metrics in its own namespace, selects the pod of
// every Deployment rendered with it and no helm test pod, and names a port
// that the pod's credsync container declares, at control.http_address's port.
function assertPodMonitor(pm, objs) {
  assert.equal(pm.apiVersion, 'monitoring.coreos.com/v1');
  assert.deepEqual(Object.keys(pm.spec).sort(), ['namespaceSelector', 'podMetricsEndpoints', 'selector']);
  assert.deepEqual(pm.spec.namespaceSelector, { matchNames: [pm.metadata.namespace] });
  assert.equal(pm.spec.podMetricsEndpoints.length, 1);
  const [ep] = pm.spec.podMetricsEndpoints;
  assert.equal(ep.path, '/metrics');
  for (const k of ['interval', 'scrapeTimeout']) assert.match(ep[k], PROM_DURATION, k);
  assert.ok(promSeconds(ep.scrapeTimeout) <= promSeconds(ep.interval), 'scrapeTimeout <= interval');
  const isInjector = (o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'injector';
  // The injector's PodMonitor scrapes its pods alone, on the injector
  // container's port; the sidecar's never selects an injector pod.
  if (isInjector(pm)) {
    for (const d of objs.filter((o) => o.kind === 'Deployment')) {
      const { metadata, spec } = d.spec.template;
      assert.equal(selects(pm.spec.selector, metadata.labels), isInjector(d), `selects the pods of ${d.metadata.name}: ${isInjector(d)}`);
      if (isInjector(d)) assert.ok(byName(spec.containers, 'injector').ports.some((p) => p.name === ep.port), `the injector declares ${ep.port}`);
    }
    return;
  }
  const httpPort = Number(configOf(objs).control.http_address.split(':').pop());
  for (const d of objs.filter(isInjector)) {
    if (d.kind === 'Deployment') assert.ok(!selects(pm.spec.selector, d.spec.template.metadata.labels), `does not scrape ${d.metadata.name}`);
  }
  const deployments = objs.filter((o) => o.kind === 'Deployment' && !isInjector(o));
  assert.ok(deployments.length > 0, 'a Deployment whose pods it scrapes');
  for (const d of deployments) {
    const { metadata, spec } = d.spec.template;
    assert.ok(selects(pm.spec.selector, metadata.labels), `selects the pods of ${d.metadata.name}`);
    assert.ok(selects(d.spec.selector, metadata.labels));
    const credsync = byName(allContainers(spec), 'credsync');
    const port = (credsync.ports ?? []).find((p) => p.name === ep.port);
    assert.ok(port, `the credsync container of ${d.metadata.name} declares the port ${ep.port}`);
    assert.equal(port.containerPort, httpPort, 'the port is control.http_address\'s');
    const others = allContainers(spec).filter((c) => c !== credsync && (c.ports ?? []).some((p) => p.name === ep.port));
    assert.deepEqual(names(others), [], `no other container has a port ${ep.port}`);
  }
  for (const p of objs.filter((o) => o.kind === 'Pod')) {
    assert.ok(!selects(pm.spec.selector, p.metadata.labels), `does not scrape ${p.metadata.name}`);
  }
}

// The metrics an expression names, each with its label matchers: every name
// must be a family credsync exports (a histogram's _bucket/_sum/_count
// included), carry namespace="<the rule's namespace>", and match only on
// labels the family has, with values the table lists.
function assertExprMetrics(expr, namespace, where) {
  const tokens = [...expr.matchAll(/\bcredsync_[a-z0-9_]+/g)].map((m) => m[0]);
  assert.ok(tokens.length > 0, `${where}: names a credsync metric`);
  const selectors = [...expr.matchAll(/\b(credsync_[a-z0-9_]+)\{([^}]*)\}/g)];
  assert.equal(selectors.length, tokens.length, `${where}: every metric has a label selector`);
  for (const [, token, matchers] of selectors) {
    const family = DOC_METRICS.get(token) ? token : token.replace(/_(bucket|sum|count)$/, '');
    const doc = DOC_METRICS.get(family);
    assert.ok(doc, `${where}: ${token} is a metric credsync exports (docs/operations.md)`);
    if (family !== token) assert.equal(doc.type, 'histogram', `${where}: ${token}`);
    const parsed = [...matchers.matchAll(/([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map(([, l, op, v]) => ({ l, op, v }));
    assert.equal(parsed.map(({ l, op, v }) => `${l}${op}"${v}"`).join(', '), matchers.replace(/\s*,\s*/g, ', ').trim(),
                 `${where}: ${token}'s matchers parse`);
    assert.ok(parsed.some(({ l, op, v }) => l === 'namespace' && op === '=' && v === namespace),
              `${where}: ${token} is limited to namespace ${namespace}`);
    for (const { l, op, v } of parsed) {
      if (l === 'namespace') continue;
      assert.ok(doc.labels.has(l), `${where}: ${token} has a label ${l}`);
      const values = doc.labels.get(l);
      if (values && (op === '=' || op === '!=')) assert.ok(values.includes(v), `${where}: ${token}{${l}} takes ${v} (${values})`);
    }
  }
}

// A PrometheusRule: one group of alerts, each with expr, for, a severity,
// a summary, a description and the operations guide's alerts as runbook.
const ALERTS_RUNBOOK = 'https://github.com/credsync/credsync/blob/main/docs/operations.md#alerts';
function assertPrometheusRule(rule) {
  assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
  assert.deepEqual(Object.keys(rule.spec), ['groups']);
  const alerts = rule.spec.groups.flatMap((g) => {
    assert.ok(g.name && g.rules.length > 0, 'a named group with rules');
    return g.rules;
  });
  assert.equal(new Set(alerts.map((a) => a.alert)).size, alerts.length, 'alert names are unique');
  for (const a of alerts) {
    assert.deepEqual(Object.keys(a).sort(), ['alert', 'annotations', 'expr', 'for', 'labels']);
    assert.match(a.alert, /^Credsync[A-Z][A-Za-z]+$/);
    assert.equal(typeof a.expr, 'string');
    assert.match(a.for, PROM_DURATION, `${a.alert} for`);
    assert.ok(['critical', 'warning'].includes(a.labels.severity), `${a.alert} severity`);
    assert.ok(a.annotations.summary?.length > 10, `${a.alert} summary`);
    assert.ok(a.annotations.description?.length > 10, `${a.alert} description`);
    assert.equal(a.annotations.runbook_url, ALERTS_RUNBOOK);
    for (const text of [a.annotations.summary, a.annotations.description]) {
      // Prometheus's own template placeholders survive Helm's rendering.
      for (const m of text.matchAll(/\{\{(.*?)\}\}/g)) assert.match(m[1], /^ \$(labels\.[a-z_]+|value( \| humanizeDuration)?) $/, `${a.alert}: ${m[0]}`);
    }
    assertExprMetrics(a.expr, rule.metadata.namespace, a.alert);
  }
}

const MONITORING_CHECKS = { PodMonitor: assertPodMonitor, PrometheusRule: assertPrometheusRule };

// cert-manager's Issuer and Certificate (cert-manager.io/v1), by the fields
// the chart sets: an Issuer is selfSigned or a CA whose Secret a CA
// Certificate of the same render writes; a Certificate names a Secret, an
// issuer (one of the render's, or the user's), a key, usages cert-manager
// knows, and renews before it expires.
const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
const goSeconds = (d) => [...d.matchAll(/([0-9.]+)(ns|us|µs|ms|s|m|h)/g)]
  .reduce((t, [, n, u]) => t + Number(n) * { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }[u], 0);
function assertIssuer(issuer, objs) {
  const kinds = Object.keys(issuer.spec);
  assert.equal(kinds.length, 1, `Issuer ${issuer.metadata.name} has one kind`);
  if (kinds[0] === 'selfSigned') return;
  assert.equal(kinds[0], 'ca', `Issuer ${issuer.metadata.name}: selfSigned or ca`);
  const ca = objs.find((o) => o.kind === 'Certificate' && o.spec.secretName === issuer.spec.ca.secretName);
  assert.ok(ca?.spec.isCA, `a CA Certificate writes ${issuer.spec.ca.secretName}`);
}
function assertCertificate(cert, objs) {
  const { spec } = cert;
  assert.match(spec.secretName, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  assert.ok(['Issuer', 'ClusterIssuer'].includes(spec.issuerRef.kind), spec.issuerRef.kind);
  assert.equal(spec.issuerRef.group, 'cert-manager.io');
  assert.ok(spec.issuerRef.name);
  const local = objs.find((o) => o.kind === 'Issuer' && o.metadata.name === spec.issuerRef.name);
  if (spec.issuerRef.kind === 'Issuer' && objs.some((o) => o.kind === 'Issuer')) assert.ok(local, `Issuer ${spec.issuerRef.name} is rendered`);
  assert.ok(spec.isCA || spec.dnsNames?.length > 0, `${cert.metadata.name}: a CA or DNS names`);
  assert.ok(['RSA', 'ECDSA', 'Ed25519'].includes(spec.privateKey.algorithm));
  for (const u of spec.usages ?? []) assert.ok(['digital signature', 'key encipherment', 'server auth', 'client auth', 'cert sign'].includes(u), u);
  for (const k of ['duration', 'renewBefore']) if (spec[k] !== undefined) assert.match(spec[k], GO_DURATION, k);
  if (spec.renewBefore) assert.ok(goSeconds(spec.renewBefore) < goSeconds(spec.duration), 'renewBefore < duration');
}
const CERT_MANAGER_CHECKS = { Issuer: assertIssuer, Certificate: assertCertificate };

// ---------------------------------------------------------------------------

describe('helm lint --strict', () => {
  test('passes with the default values', () => {
    // Lint renders leniently (`required` and `fail` only log), so the
    // defaults lint clean although an install needs the values in
    // ci/minimal-values.yaml.
    const r = helm(['lint', '--strict', chart]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
  // With each file of ci/: see "charts/credsync/ci" below.
  test('Chart.yaml keeps the contract', () => {
    const meta = YAML.parse(fs.readFileSync(path.join(chart, 'Chart.yaml'), 'utf8'));
    assert.equal(meta.apiVersion, 'v2');
    assert.equal(meta.name, 'credsync');
    assert.equal(meta.version, '0.1.0');
    assert.equal(meta.appVersion, '0.1.0');
    assert.equal(meta.kubeVersion, '>=1.25.0-0');
    for (const k of ['description', 'home', 'sources', 'maintainers']) assert.ok(meta[k], `Chart.yaml has ${k}`);
  });
});

// Chart.yaml's metadata for chart repositories and Artifact Hub. The icon
// and the links are URLs under the project home that must resolve to files
// of this repository (on its main branch), so each is mapped back to one.
describe('Chart.yaml: icon, maintainers, Artifact Hub annotations', () => {
  const meta = YAML.parse(fs.readFileSync(path.join(chart, 'Chart.yaml'), 'utf8'));
  const values = YAML.parse(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
  const HOME = 'https://github.com/credsync/credsync';
  const RAW = 'https://raw.githubusercontent.com/credsync/credsync/main/';
  const ann = meta.annotations ?? {};
  const list = (key) => {
    assert.equal(typeof ann[key], 'string', `${key} is a string (Chart.yaml annotations are strings)`);
    const doc = YAML.parseDocument(ann[key]);
    assert.deepEqual(doc.errors, [], `${key} parses as YAML`);
    const v = doc.toJS();
    assert.ok(Array.isArray(v) && v.length > 0, `${key} is a non-empty YAML list`);
    return v;
  };
  // A https URL of a file of this repository, as the repository path.
  const repoFileOf = (url) => {
    if (url.startsWith(RAW)) return url.slice(RAW.length);
    const m = url.match(/^https:\/\/github\.com\/credsync\/credsync\/blob\/main\/([^#]+)(#.*)?$/);
    return m ? m[1] : null;
  };

  test('helm lint --strict has nothing to say about the metadata (no "icon is recommended")', () => {
    const r = helm(['lint', '--strict', chart]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /Chart\.yaml/, r.stdout);
  });

  test('home is the project; the icon is an SVG of this repository under it', () => {
    assert.equal(meta.home, HOME);
    assert.ok(meta.icon.startsWith(RAW), `icon ${meta.icon} is under ${RAW}`);
    const file = path.join(repo, repoFileOf(meta.icon));
    assert.ok(fs.existsSync(file), `${meta.icon} is ${path.relative(repo, file)} in this repository`);
    const svg = fs.readFileSync(file, 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 (\d+) \1"/, 'a square SVG');
    assert.match(svg.trim(), /<\/svg>$/);
    assert.doesNotMatch(svg, /<script|href=/i, 'no scripts, no external references');
  });

  test('maintainers have a name and a https URL', () => {
    assert.ok(meta.maintainers.length > 0);
    for (const m of meta.maintainers) {
      assert.ok(m.name, 'name');
      assert.match(m.url, /^https:\/\//);
    }
  });

  test('only known artifacthub.io annotations, each a string', () => {
    const known = ['category', 'changes', 'containsSecurityUpdates', 'images', 'license', 'links', 'operator', 'prerelease'];
    for (const [k, v] of Object.entries(ann)) {
      assert.equal(typeof v, 'string', `${k} is a string`);
      if (k.startsWith('artifacthub.io/')) assert.ok(known.includes(k.slice('artifacthub.io/'.length)), `${k} is one we mean to set`);
    }
    assert.ok(['security'].includes(ann['artifacthub.io/category']));
  });

  test('images: the chart\'s default image at the appVersion', () => {
    const images = list('artifacthub.io/images');
    assert.deepEqual(images, [{ name: 'credsync', image: `${values.image.repository}:${meta.appVersion}` }]);
  });

  test('links: named https URLs of documents that exist here', () => {
    for (const link of list('artifacthub.io/links')) {
      assert.deepEqual(Object.keys(link).sort(), ['name', 'url']);
      assert.ok(link.name.length > 0);
      const file = repoFileOf(link.url);
      assert.ok(file, `${link.url} is a file under ${HOME}/blob/main/`);
      assert.ok(fs.existsSync(path.join(repo, file)), `${file} exists`);
    }
  });

  test('changes: kind and description each', () => {
    for (const c of list('artifacthub.io/changes')) {
      assert.ok(['added', 'changed', 'deprecated', 'removed', 'fixed', 'security'].includes(c.kind), `kind ${c.kind}`);
      assert.equal(typeof c.description, 'string');
      assert.ok(c.description.length > 10);
    }
  });

  test('the flags say what is true: no security fix listed, not an operator, pre-release as the version', () => {
    const changes = list('artifacthub.io/changes');
    assert.equal(ann['artifacthub.io/containsSecurityUpdates'],
                 String(changes.some((c) => c.kind === 'security')));
    // An operator chart would ship CRDs; this one has none.
    assert.equal(ann['artifacthub.io/operator'], 'false');
    assert.ok(!fs.existsSync(path.join(chart, 'crds')));
    assert.equal(ann['artifacthub.io/prerelease'], String(meta.version.includes('-')));
  });

  test('a licence is claimed only with a licence file', () => {
    const licence = ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'COPYING'].find((f) => fs.existsSync(path.join(repo, f)));
    if (licence) assert.match(ann['artifacthub.io/license'] ?? '', /^[A-Za-z0-9.+-]+$/, `an SPDX id for ${licence}`);
    else assert.equal(ann['artifacthub.io/license'], undefined, 'no licence file in the repository, so no licence claimed');
  });
});

// What each file of charts/credsync/ci stands for, checked on its render
// (Kubernetes 1.30, so sidecar.mode auto means native). A new file needs an
// entry here: a scenario nothing checks is only half a test.
const CI_SCENARIOS = {
  'minimal-values.yaml': {
    what: 'the default: a native sidecar, the token projected by the chart',
    check(objs) {
      const pod = deploymentPod(objs);
      assert.deepEqual(names(pod.initContainers), ['credsync']);
      assert.deepEqual(names(pod.containers), ['app']);
      assertCredsyncContainer(pod.initContainers[0], { native: true });
      assertVolumes(pod);
      assertApp(pod);
    },
  },
  'full-values.yaml': {
    what: 'every value set (checked key by key further down)',
    check(objs) {
      const pod = deploymentPod(objs);
      assert.deepEqual(names(pod.initContainers), ['credsync-init']);
      assertKmsInstancesMounted(pod);
    },
  },
  'classic-values.yaml': {
    what: 'the classic layout: credsync-init, then credsync beside the app',
    check(objs) {
      const pod = deploymentPod(objs);
      assert.deepEqual(names(pod.initContainers), ['credsync-init']);
      assert.deepEqual(names(pod.containers), ['credsync', 'app']);
      assert.deepEqual(pod.initContainers[0].args.slice(-2), ['--timeout', '90s']);
      assertCredsyncContainer(byName(pod.containers, 'credsync'), { native: false });
      for (const c of allContainers(pod)) assert.equal(c.restartPolicy, undefined, c.name);
      assertVolumes(pod);
    },
  },
  'kms-instances-values.yaml': {
    what: 'a KMS instance with a client key and no RAM identity',
    check(objs) {
      for (const pod of [deploymentPod(objs), testPod(objs)]) {
        assertKmsInstancesMounted(pod);
        assertVolumes(pod, { projectToken: false });
      }
      assert.equal(configOf(objs).kms.region, undefined);
      assert.equal(configOf(objs).kms.instances[0].ca_file, `${KMS_INSTANCES_DIR}/0/ca.pem`);
      const r = runValidate(objs, Object.fromEntries(Object.keys(RRSA_ENV).map((k) => [k, ''])));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^config OK: identity none, /);
    },
  },
  'ecs-ram-role-values.yaml': {
    what: 'the node\'s RAM role, no token projected',
    check(objs) {
      assert.deepEqual(configOf(objs).identity, { type: 'ecs_ram_role', imdsv1_fallback: false, session_duration: '1h' });
      for (const pod of [deploymentPod(objs), testPod(objs)]) assertVolumes(pod, { projectToken: false });
    },
  },
  'metrics-values.yaml': {
    what: 'a PodMonitor and a PrometheusRule, labelled for kube-prometheus-stack',
    check(objs) {
      const pm = find(objs, 'PodMonitor');
      assert.equal(pm.metadata.labels.release, 'kube-prometheus-stack');
      assert.deepEqual(pm.spec.podMetricsEndpoints, [{ port: 'probes', path: '/metrics', interval: '1m', scrapeTimeout: '15s' }]);
      const rule = find(objs, 'PrometheusRule');
      assert.equal(rule.metadata.labels.release, 'kube-prometheus-stack');
      assert.ok(rule.spec.groups[0].rules.some((r) => r.for === '5m'));
    },
  },
  'injector-values.yaml': {
    what: 'the injector alone: no sidecar Deployment, ConfigMap or config.profiles; a Helm-generated certificate',
    noSidecarConfig: true,
    check(objs) {
      assert.deepEqual(objs.map((o) => o.kind).sort(),
        ['Deployment', 'MutatingWebhookConfiguration', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceAccount']);
      const args = injectionFlags(find(objs, 'Deployment', 'rel-credsync-injector'));
      assert.equal(args['--kms-region'], 'cn-hangzhou');
      assert.equal(args['--oidc-provider-arn'], 'acs:ram::123456789012:oidc-provider/ack-rrsa-c0123456789abcdef');
      assertServingCertificate(objs);
    },
  },
  'generic-profiles-values.yaml': {
    what: 'generic profiles only: no credentials.ini, so no ALIBABA_CLOUD_CREDENTIALS_FILE',
    check(objs) {
      assert.deepEqual(configOf(objs).profiles.map((p) => p.kind), ['generic', 'generic']);
      assert.equal(byName(deploymentPod(objs).containers, 'app').env, undefined);
    },
  },
};

describe('charts/credsync/ci: every values file (chart-testing\'s folder)', () => {
  const files = fs.readdirSync(ciDir).sort();

  test('holds the scenarios, each named *-values.yaml (the files ct picks up)', () => {
    for (const f of files) assert.match(f, /^[a-z0-9-]+-values\.yaml$/, `ci/${f}`);
    assert.deepEqual(files, Object.keys(CI_SCENARIOS).sort(), 'the ci/ files and the scenarios checked here');
  });

  for (const file of files) {
    describe(`ci/${file}: ${CI_SCENARIOS[file]?.what ?? '(no scenario)'}`, () => {
      const values = path.join(ciDir, file);
      test('helm lint --strict passes', () => {
        const r = helm(['lint', '--strict', chart, '-f', values]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
      });
      const objs = render({ files: [values] });
      test('valid objects; credsync validate accepts the ConfigMap', async () => {
        await assertModels(objs);
        // An injector-only scenario has no config of its own to validate.
        if (CI_SCENARIOS[file]?.noSidecarConfig) none(objs, 'ConfigMap');
        else assertValidates(objs);
        assertLabelValues(objs);
      });
      test('the scenario renders as it says', () => {
        assert.ok(CI_SCENARIOS[file], `CI_SCENARIOS has ${file}`);
        CI_SCENARIOS[file].check(objs);
      });
    });
  }
});

describe('helm template: required values', () => {
  test('the defaults alone fail with one line naming what is missing', () => {
    const err = renderFails({ files: [] });
    assert.match(err, /rrsa\.roleArn is required|config\.profiles: list at least one|config\.kms: set/);
  });
  test('rrsa.roleArn is required when the chart projects the token', () => {
    assert.match(renderFails({ set: { 'rrsa.roleArn': '' } }), /rrsa\.roleArn is required when rrsa\.projectToken is true/);
  });
  test('rrsa.oidcProviderArn is required when the chart projects the token', () => {
    assert.match(renderFails({ set: { 'rrsa.oidcProviderArn': '' } }), /rrsa\.oidcProviderArn is required/);
  });
  test('at least one profile', () => {
    assert.match(renderFails({ setJson: { 'config.profiles': [] } }), /config\.profiles: list at least one profile/);
  });
  test('a KMS region, endpoint or instance', () => {
    assert.match(renderFails({ set: { 'config.kms.region': '' } }),
      /config\.kms: set config\.kms\.region, config\.kms\.endpoints or config\.kms\.instances/);
  });
  test('serviceAccount.name when the chart does not create one', () => {
    assert.match(renderFails({ set: { 'serviceAccount.create': 'false' } }), /serviceAccount\.name is required/);
  });
  test('kubeVersion: refused below 1.25', () => {
    const r = helm(['template', 'rel', chart, '-f', minimal, '--kube-version', '1.24.0']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /kubeVersion|incompatible/i);
  });
});

describe('helm template: default (native sidecar)', () => {
  const objs = render();

  test('renders one ServiceAccount, ConfigMap, Deployment and the test Pod', () => {
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'Pod', 'ServiceAccount']);
    for (const o of objs) {
      assert.equal(o.metadata.namespace, 'apps');
      assert.equal(o.metadata.labels['app.kubernetes.io/name'], 'credsync');
      assert.equal(o.metadata.labels['app.kubernetes.io/instance'], 'rel');
      assert.equal(o.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
      assert.equal(o.metadata.labels['helm.sh/chart'], 'credsync-0.1.0');
    }
  });

  test('credsync is a native sidecar: an init container with restartPolicy Always', () => {
    const pod = deploymentPod(objs);
    assert.deepEqual(names(pod.initContainers), ['credsync']);
    assert.deepEqual(names(pod.containers), ['app']);
    assertCredsyncContainer(pod.initContainers[0], { native: true, image: 'ghcr.io/credsync/credsync:0.1.0' });
    assert.deepEqual(pod.initContainers[0].resources, { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } });
    assert.equal(pod.containers[0].restartPolicy, undefined);
  });

  test('the token is projected into credsync alone; the volume is in memory', () => {
    const pod = deploymentPod(objs);
    assertVolumes(pod);
    assert.deepEqual(Object.keys(envMap(pod.initContainers[0])).sort(),
      ['ALIBABA_CLOUD_OIDC_PROVIDER_ARN', 'ALIBABA_CLOUD_OIDC_TOKEN_FILE', 'ALIBABA_CLOUD_ROLE_ARN', 'POD_NAME']);
    assert.deepEqual(envMap(pod.initContainers[0]), {
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      ...RRSA_ENV,
    });
  });

  test('the app reads the file through ALIBABA_CLOUD_CREDENTIALS_FILE', () => {
    assertApp(deploymentPod(objs));
  });

  test('restricted pod security, service account, grace period, config checksum', () => {
    const dep = find(objs, 'Deployment');
    const pod = dep.spec.template.spec;
    assertPodSecurity(pod);
    assert.equal(pod.serviceAccountName, 'rel-credsync');
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.equal(dep.spec.replicas, 1);
    assert.deepEqual(dep.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'credsync', 'app.kubernetes.io/instance': 'rel' });
    assert.match(dep.spec.template.metadata.annotations['checksum/credsync-config'], /^[0-9a-f]{64}$/);
  });

  test('the ServiceAccount has no webhook annotation unless rrsa.roleName is set', () => {
    const sa = find(objs, 'ServiceAccount');
    assert.equal(sa.metadata.name, 'rel-credsync');
    assert.equal(sa.metadata.annotations, undefined);
    assert.equal(sa.automountServiceAccountToken, false);
  });

  test('config.yaml, key by key', () => {
    assert.deepEqual(configOf(objs), {
      identity: { session_duration: '1h' },
      kms: { region: 'cn-hangzhou', signature: 'acs3' },
      http: { connect_timeout: '5s', request_timeout: '10s' },
      profiles: [{ name: 'default', secret_name: 'acs/ram/user/demo-app' }],
      output: { directory: OUTPUT_DIR, file_mode: '0440', group: 65532 },
      refresh: {
        interval: '1h',
        jitter: 0.1,
        rotation_delay: '5m',
        rotation_jitter: '5m',
        startup_jitter: '0s',
        retry_initial_backoff: '2s',
        retry_max_backoff: '10s',
        throttled_max_backoff: '1m',
        on_demand_burst: 5,
        on_demand_refill: '10m',
      },
      control: { socket: `${OUTPUT_DIR}/credsync.sock`, http_address: '0.0.0.0:9808', refresh_timeout: '30s' },
      log: { level: 'info' },
    });
    assert.equal(find(objs, 'ConfigMap').data['ca.pem'], undefined);
  });

  test('credsync validate accepts the rendered config', () => assertValidates(objs));
  test('every object is a valid Kubernetes object', () => assertModels(objs));

  test('helm test pod: own native credsync, same ServiceAccount, checker over the socket', () => {
    const podObj = find(objs, 'Pod');
    assert.equal(podObj.metadata.annotations['helm.sh/hook'], 'test');
    const pod = podObj.spec;
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.serviceAccountName, 'rel-credsync');
    assert.deepEqual(names(pod.initContainers), ['credsync']);
    assertCredsyncContainer(pod.initContainers[0], { native: true });
    assert.deepEqual(names(pod.containers), ['check']);
    const check = pod.containers[0];
    // credsync's own check: the image has no shell.
    assert.deepEqual(check.command, ['/usr/local/bin/credsync']);
    assert.deepEqual(check.args, ['check', '--socket', `${OUTPUT_DIR}/credsync.sock`,
                                  '--file', `${OUTPUT_DIR}/credentials.ini`]);
    assert.deepEqual(check.volumeMounts, [{ name: 'credsync', mountPath: OUTPUT_DIR, readOnly: true }]);
    assertVolumes(pod);
    assertPodSecurity(pod);
  });
});

describe('helm template: sidecar.mode=classic', () => {
  const objs = render({ set: { 'sidecar.mode': 'classic' } });
  const pod = deploymentPod(objs);

  test('credsync-init runs sync --once, then credsync runs as an ordinary container', () => {
    assert.deepEqual(names(pod.initContainers), ['credsync-init']);
    const init = pod.initContainers[0];
    assert.deepEqual(init.command, ['/usr/local/bin/credsync']);
    assert.deepEqual(init.args, ['sync', '--once', '--config', '/etc/credsync/config.yaml', '--timeout', '60s']);
    assert.equal(init.restartPolicy, undefined);
    assert.equal(init.startupProbe, undefined, 'an init container that exits has no probes');
    assertCredsyncEnvAndMounts(init);
    assert.deepEqual(names(pod.containers), ['credsync', 'app']);
    assertCredsyncContainer(byName(pod.containers, 'credsync'), { native: false });
  });

  test('restartPolicy Always appears only in native mode', () => {
    for (const c of allContainers(pod)) assert.equal(c.restartPolicy, undefined, c.name);
  });

  test('the token stays in the credsync containers', () => {
    assertVolumes(pod);
    assertPodSecurity(pod);
    assertApp(pod);
  });

  test('the helm test pod still runs credsync as a native sidecar', () => {
    const tp = testPod(objs);
    assert.deepEqual(names(tp.initContainers), ['credsync']);
    assert.equal(tp.initContainers[0].restartPolicy, 'Always');
  });

  test('valid objects and config', async () => {
    assertValidates(objs);
    await assertModels(objs);
  });
});

describe('helm template: sidecar.mode auto (the default) follows the cluster version', () => {
  const NATIVE_ONLY_MESSAGE = (version) =>
    `sidecar.mode=native needs native sidecars, on by default from Kubernetes 1.29, and the cluster is ${version}: set sidecar.mode=auto or classic`;
  const LAYOUTS = {
    native: { initContainers: ['credsync'], containers: ['app'] },
    classic: { initContainers: ['credsync-init'], containers: ['credsync', 'app'] },
  };
  // The Deployment's pod in `mode`: restartPolicy Always on the native
  // sidecar and on nothing else.
  function assertLayout(objs, mode) {
    const pod = deploymentPod(objs);
    assert.deepEqual(names(pod.initContainers), LAYOUTS[mode].initContainers);
    assert.deepEqual(names(pod.containers), LAYOUTS[mode].containers);
    const credsync = byName(mode === 'native' ? pod.initContainers : pod.containers, 'credsync');
    assertCredsyncContainer(credsync, { native: mode === 'native' });
    for (const c of allContainers(pod)) {
      if (c !== credsync) assert.equal(c.restartPolicy, undefined, `${c.name} has no restartPolicy`);
    }
  }
  // The helm test pod runs credsync as a native sidecar whatever the mode:
  // rendered only where the cluster has native sidecars.
  function assertTestPod(objs, present) {
    if (!present) return none(objs, 'Pod');
    const tp = testPod(objs);
    assert.deepEqual(names(tp.initContainers), ['credsync']);
    assert.equal(tp.initContainers[0].restartPolicy, 'Always');
  }

  test('values.yaml defaults to auto; the schema takes auto, native and classic', () => {
    const values = YAML.parse(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
    assert.equal(values.sidecar.mode, 'auto');
    const schema = JSON.parse(fs.readFileSync(path.join(chart, 'values.schema.json'), 'utf8'));
    assert.deepEqual(schema.properties.sidecar.properties.mode.enum, ['auto', 'native', 'classic']);
  });

  for (const [kubeVersion, mode] of [
    ['1.25.0', 'classic'],
    ['1.28.0', 'classic'],
    ['1.28.15-aliyun.1', 'classic'],
    ['1.29.0', 'native'],
    ['1.30.1-aliyun.1', 'native'],
  ]) {
    test(`auto on Kubernetes ${kubeVersion}: ${mode}`, async () => {
      const objs = render({ kubeVersion });
      assertLayout(objs, mode);
      assertTestPod(objs, mode === 'native');
      assertVolumes(deploymentPod(objs));
      assertPodSecurity(deploymentPod(objs));
      assertValidates(objs);
      await assertModels(objs);
    });
  }

  test('native on Kubernetes 1.28: the render fails with one line naming the mode and the version', () => {
    for (const set of [
      { 'sidecar.mode': 'native' },
      // Even when the chart places no sidecar itself (a parent chart does).
      { 'sidecar.mode': 'native', 'deployment.enabled': 'false', 'tests.enabled': 'false' },
    ]) {
      const err = renderFails({ kubeVersion: '1.28.0', set });
      assert.ok(err.includes(NATIVE_ONLY_MESSAGE('v1.28.0')), err);
      assert.equal(err.split('\n').filter((l) => l.includes('sidecar.mode')).length, 1, err);
    }
  });

  test('native from 1.29 and classic on any version render as asked', () => {
    assertLayout(render({ kubeVersion: '1.29.0', set: { 'sidecar.mode': 'native' } }), 'native');
    for (const kubeVersion of ['1.25.0', '1.28.0', '1.29.0']) {
      const objs = render({ kubeVersion, set: { 'sidecar.mode': 'classic' } });
      assertLayout(objs, 'classic');
      assertTestPod(objs, kubeVersion === '1.29.0');
    }
  });

  test('app.enabled=false below 1.29: credsync-init, then credsync alone', () => {
    const pod = deploymentPod(render({ kubeVersion: '1.28.0', set: { 'app.enabled': 'false' } }));
    assert.deepEqual(names(pod.initContainers), ['credsync-init']);
    assert.deepEqual(names(pod.containers), ['credsync']);
    for (const c of allContainers(pod)) assert.equal(c.restartPolicy, undefined, c.name);
  });

  test('a parent chart\'s includes follow the same rule', () => {
    const layout = (r) => {
      assert.equal(r.status, 0, r.stderr);
      const pod = deploymentPod(parseObjects(r.stdout));
      return [names(pod.initContainers), names(pod.containers), allContainers(pod).filter((c) => c.restartPolicy).map((c) => c.name)];
    };
    assert.deepEqual(layout(renderParent([], '1.28.0')), [['credsync-init', 'migrate'], ['credsync', 'web'], []]);
    assert.deepEqual(layout(renderParent([], '1.29.0')), [['credsync', 'migrate'], ['web'], ['credsync']]);
    const r = renderParent(['--set', 'credsync.sidecar.mode=native'], '1.28.0');
    assert.notEqual(r.status, 0);
    assert.ok(r.stderr.includes(NATIVE_ONLY_MESSAGE('v1.28.0')), r.stderr);
  });

  test('NOTES name the mode in effect and what sidecar.mode says', () => {
    const r = helm(['install', 'rel', chart, '--dry-run=client', '--namespace', 'apps', '-f', minimal]);
    assert.equal(r.status, 0, r.stderr);
    // helm install --dry-run has no --kube-version: helm's own default, 1.29 or later.
    assert.match(r.stdout, /Sidecar mode: native \(sidecar\.mode=auto, Kubernetes v1\.\d+\.\d+\)\. credsync is an init container with restartPolicy Always\./);
  });
});

describe('helm template: TCP listener on', () => {
  test('binds loopback by default and exposes the grpc port', async () => {
    const objs = render({ set: { 'config.control.tcp.enabled': 'true' } });
    const config = configOf(objs);
    assert.equal(config.control.tcp_address, '127.0.0.1:9901');
    assert.equal(config.control.http_address, '0.0.0.0:9808');
    assertCredsyncContainer(deploymentPod(objs).initContainers[0], { native: true, tcpPort: 9901 });
    assertValidates(objs);
    await assertModels(objs);
  });

  test('bind address and ports are values; IPv6 gets brackets', async () => {
    const objs = render({
      set: {
        'config.control.tcp.enabled': 'true',
        'config.control.tcp.bindAddress': '::1',
        'config.control.tcp.port': '9911',
        'config.control.httpPort': '9818',
      },
    });
    const config = configOf(objs);
    assert.equal(config.control.tcp_address, '[::1]:9911');
    assert.equal(config.control.http_address, '0.0.0.0:9818');
    assertCredsyncContainer(deploymentPod(objs).initContainers[0], { native: true, httpPort: 9818, tcpPort: 9911 });
    assertValidates(objs);
    await assertModels(objs);
  });

  test('any address can be chosen', () => {
    const objs = render({ set: { 'config.control.tcp.enabled': 'true', 'config.control.tcp.bindAddress': '0.0.0.0' } });
    assert.equal(configOf(objs).control.tcp_address, '0.0.0.0:9901');
    assertValidates(objs);
  });
});

describe('helm template: several profiles', () => {
  const profiles = [
    { name: 'app', secretName: 'acs/ram/user/app', default: true },
    { name: 'reports', secretName: 'acs/ram/user/reports', versionStage: 'ACSPrevious', required: false },
    { name: 'audit_2', secretName: 'acs/ram/user/audit' },
    { name: 'db', secretName: 'rds/orders', kind: 'generic', format: 'json_keys', filePrefix: 'orders-db.' },
    { name: 'payments', secretName: 'api/payments', kind: 'generic', file: 'payments-api-key' },
  ];
  const objs = render({ setJson: { 'config.profiles': profiles } });

  test('each profile keeps its order and keys', () => {
    assert.deepEqual(configOf(objs).profiles, [
      { name: 'app', secret_name: 'acs/ram/user/app', default: true },
      { name: 'reports', secret_name: 'acs/ram/user/reports', version_stage: 'ACSPrevious', required: false },
      { name: 'audit_2', secret_name: 'acs/ram/user/audit' },
      { name: 'db', secret_name: 'rds/orders', kind: 'generic', format: 'json_keys', file_prefix: 'orders-db.' },
      { name: 'payments', secret_name: 'api/payments', kind: 'generic', file: 'payments-api-key' },
    ]);
  });
  test('credsync validate accepts them', () => assertValidates(objs));
  test('a profile without secretName is refused by name', () => {
    assert.match(renderFails({ setJson: { 'config.profiles': [{ name: 'a' }] } }), /secretName/);
  });
});

describe('helm template: generic profiles only', () => {
  const objs = render({
    setJson: {
      'config.profiles': [
        { name: 'db', secretName: 'app/db', kind: 'generic', format: 'json_keys' },
        { name: 'tls', secretName: 'app/tls', kind: 'generic', file: 'tls.pem' },
      ],
    },
  });

  // No credentials.ini is written: an SDK pointed at it would fail.
  test('the app is not pointed at a credentials.ini', () => {
    const app = byName(deploymentPod(objs).containers, 'app');
    assert.equal(app.env, undefined);
    assert.deepEqual(app.args.slice(0, 1), ['check']);
  });

  test('a RAM credentials profile beside them brings the variable back', () => {
    const mixed = render({
      setJson: {
        'config.profiles': [
          { name: 'db', secretName: 'app/db', kind: 'generic' },
          { name: 'default', secretName: 'acs/ram/user/app' },
        ],
      },
    });
    assert.deepEqual(byName(deploymentPod(mixed).containers, 'app').env,
                     [{ name: 'ALIBABA_CLOUD_CREDENTIALS_FILE', value: `${OUTPUT_DIR}/credentials.ini` }]);
  });

  test('credsync validate accepts the config', () => assertValidates(objs));
  test('valid objects', () => assertModels(objs));
});

describe('helm template: change hooks and shareProcessNamespace', () => {
  const hooks = [
    { name: 'reload-nginx', signal: { signal: 'SIGHUP', process: 'nginx' } },
    { signal: { signal: 10, pidFile: '/var/run/credsync/app.pid' }, profiles: ['default'] },
    { name: 'script', command: ['/bin/sh', '-c', 'true'], timeout: '5s' },
  ];
  const objs = render({ setJson: { 'config.hooks': hooks }, set: { 'deployment.shareProcessNamespace': 'true' } });

  test('hooks reach config.yaml in the sidecar\'s keys, in order', () => {
    assert.deepEqual(configOf(objs).hooks, [
      { name: 'reload-nginx', signal: { signal: 'SIGHUP', process: 'nginx' } },
      { signal: { signal: 10, pid_file: '/var/run/credsync/app.pid' }, profiles: ['default'] },
      { name: 'script', command: ['/bin/sh', '-c', 'true'], timeout: '5s' },
    ]);
  });
  test('the pod shares its process namespace', () => {
    assert.equal(deploymentPod(objs).shareProcessNamespace, true);
  });
  test('credsync validate accepts them', () => assertValidates(objs));
  test('sidecar.runAsUser/runAsGroup set the user of every credsync container (a signal reaches only its own user)', () => {
    const own = render({ set: { 'sidecar.runAsUser': 1000, 'sidecar.runAsGroup': 2000, 'sidecar.mode': 'classic' } });
    const pod = deploymentPod(own);
    for (const c of allContainers(pod)) {
      assert.equal(c.securityContext.runAsUser, 1000, `runAsUser of ${c.name}`);
      assert.equal(c.securityContext.runAsGroup, 2000, `runAsGroup of ${c.name}`);
      assert.equal(c.securityContext.runAsNonRoot, true);
    }
    assert.deepEqual(names(pod.initContainers), ['credsync-init']);
    for (const value of [0, -1]) {
      assert.match(renderFails({ set: { 'sidecar.runAsUser': value } }), /runAsUser/);
    }
    assert.match(renderFails({ setString: { 'sidecar.runAsGroup': '65532' } }), /runAsGroup/);
  });
  test('by default: no hooks, no shared process namespace', () => {
    const plain = render();
    assert.equal(configOf(plain).hooks, undefined);
    assert.equal(deploymentPod(plain).shareProcessNamespace, undefined);
  });
  const bad = [
    ['a hook with both signal and command', [{ command: ['a'], signal: { process: 'b' } }]],
    ['a hook with neither', [{ name: 'x' }]],
    ['a signal hook without a target', [{ signal: { signal: 'SIGHUP' } }]],
    ['a signal hook with two targets', [{ signal: { process: 'a', pidFile: '/a.pid' } }]],
    ['a snake_case pid_file', [{ signal: { pid_file: '/a.pid' } }]],
    ['an empty command', [{ command: [] }]],
    ['a timeout without a unit', [{ command: ['a'], timeout: '30' }]],
    ['a process path instead of a name', [{ signal: { process: '/usr/sbin/nginx' } }]],
    ['a signal number out of range', [{ signal: { signal: 99, process: 'a' } }]],
  ];
  for (const [what, value] of bad) {
    test(`the schema refuses ${what}`, () => {
      const err = renderFails({ setJson: { 'config.hooks': value } });
      assert.match(err, /values don't meet the specifications of the schema/);
      assert.match(err, /\/config\/hooks\/0/);
    });
  }
});

describe('helm template: custom STS and KMS endpoints, CA bundle', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIBTestOnlyNotARealCertificate\n-----END CERTIFICATE-----\n';
  const objs = render({
    set: {
      'config.sts.endpoint': 'sts-vpc.cn-shanghai.aliyuncs.com',
      'config.sts.region': 'cn-shanghai',
      'config.sts.vpcEndpoint': 'false',
      'config.kms.vpcEndpoint': 'true',
      'config.kms.signature': 'hmac-sha1',
    },
    setJson: {
      'config.kms.endpoints': ['kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com', 'https://kms-vpc.cn-hangzhou.aliyuncs.com:443'],
    },
    setString: { 'config.tls.caBundle': ca },
  });

  test('identity and kms keys', () => {
    const config = configOf(objs);
    assert.deepEqual(config.identity, {
      session_duration: '1h',
      sts_endpoint: 'sts-vpc.cn-shanghai.aliyuncs.com',
      sts_region: 'cn-shanghai',
      vpc_endpoint: false,
    });
    assert.deepEqual(config.kms, {
      region: 'cn-hangzhou',
      endpoints: ['kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com', 'https://kms-vpc.cn-hangzhou.aliyuncs.com:443'],
      vpc_endpoint: true,
      signature: 'hmac-sha1',
    });
  });

  test('the CA bundle is ca.pem beside config.yaml, and tls.ca_file points at it', () => {
    const cm = find(objs, 'ConfigMap');
    assert.equal(cm.data['ca.pem'], ca);
    assert.deepEqual(configOf(objs).tls, { ca_file: '/etc/credsync/ca.pem' });
  });

  test('changing the CA rolls the pods', () => {
    const other = render({ setString: { 'config.tls.caBundle': ca.replace('Test', 'Other') } });
    const sum = (o) => find(o, 'Deployment').spec.template.metadata.annotations['checksum/credsync-config'];
    assert.notEqual(sum(objs), sum(other));
  });

  test('endpoints only, without a region', () => {
    const o = render({ set: { 'config.kms.region': '' }, setJson: { 'config.kms.endpoints': ['127.0.0.1:8443'] } });
    assert.deepEqual(configOf(o).kms, { endpoints: ['127.0.0.1:8443'], signature: 'acs3' });
    assertValidates(o);
  });

  test('credsync validate accepts the config', () => assertValidates(objs));
  test('valid objects', () => assertModels(objs));

  // A VPC-only cluster names only the KMS region and the VPC switch: STS must
  // follow them (the central sts.aliyuncs.com is not reachable there), and
  // validate says which endpoint credsync will call. No RRSA endpoint
  // variables, as on ACK with rrsa.projectToken (the chart's default).
  test('kms.region and kms.vpcEndpoint alone: STS follows them', () => {
    const o = render({ set: { 'config.kms.region': 'cn-shenzhen', 'config.kms.vpcEndpoint': 'true' } });
    assert.equal(configOf(o).identity.sts_endpoint, undefined);
    const r = runValidate(o);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, / KMS https:\/\/kms-vpc\.cn-shenzhen\.aliyuncs\.com, STS https:\/\/sts-vpc\.cn-shenzhen\.aliyuncs\.com, output /);
  });
});

describe('helm template: config.kms.instances (client keys from Secrets)', () => {
  const HZ = 'kst-hzz65f176a0ogplgq.cryptoservice.kms.aliyuncs.com';
  const HZ2 = 'kst-hzz75f176a0ogplgq.cryptoservice.kms.aliyuncs.com';
  const profiles = { 'config.profiles[0].name': 'default', 'config.profiles[0].secretName': 'acs/ram/user/demo-app' };
  // Instances only: no region, no endpoints, so no RAM identity and no token.
  const onlyInstances = (instances, set = {}) => ({
    files: [],
    set: { 'rrsa.projectToken': 'false', ...profiles, ...set },
    setJson: { 'config.kms.instances': instances },
  });
  const one = [{ endpoint: HZ, regionId: 'cn-hangzhou', clientKeySecret: { name: 'kms-client-key' } }];
  const two = [
    { endpoint: HZ, regionId: 'cn-hangzhou', clientKeySecret: { name: 'kms-client-key', caKey: 'ca.pem' } },
    {
      endpoint: `https://${HZ2}:443`,
      regionId: 'cn-hangzhou',
      clientKeySecret: { name: 'kms-client-key-2', clientKeyKey: 'clientKey_KAAP.2.json', passwordKey: 'clientKey_KAAP.2_Password.txt' },
      caBundle: INSTANCE_CA,
      insecureSkipVerify: true,
    },
  ];
  const sum = (o) => find(o, 'Deployment').spec.template.metadata.annotations['checksum/credsync-config'];

  describe('one instance, nothing else', () => {
    const objs = render(onlyInstances(one));

    test('config.yaml: kms.instances[0] with the mounted files; no region, no endpoints', () => {
      const config = configOf(objs);
      assert.deepEqual(config.kms, {
        instances: [{
          endpoint: HZ,
          region_id: 'cn-hangzhou',
          client_key_file: `${KMS_INSTANCES_DIR}/0/clientKey.json`,
          password_file: `${KMS_INSTANCES_DIR}/0/password.txt`,
        }],
        signature: 'acs3',
      });
      assert.deepEqual(config.identity, { session_duration: '1h' });
      assert.deepEqual(Object.keys(find(objs, 'ConfigMap').data), ['config.yaml']);
    });

    test('one projected volume, 0440, the Secret\'s two default keys under 0/', () => {
      for (const pod of [deploymentPod(objs), testPod(objs)]) {
        const vol = byName(pod.volumes, 'credsync-kms-instances');
        assert.deepEqual(vol.projected, {
          defaultMode: 0o440,
          sources: [{
            secret: {
              name: 'kms-client-key',
              items: [{ key: 'clientKey.json', path: '0/clientKey.json' }, { key: 'password.txt', path: '0/password.txt' }],
            },
          }],
        });
        assertVolumes(pod, { projectToken: false });
        assert.equal(pod.securityContext.fsGroup, 65532, 'the fsGroup owns the 0440 files');
      }
    });

    test('mounted into credsync alone: native sidecar and the helm test pod', () => {
      const pod = deploymentPod(objs);
      assert.deepEqual(names(pod.initContainers), ['credsync']);
      assert.deepEqual(names(pod.containers), ['app']);
      assertKmsInstancesMounted(pod);
      assertApp(pod);
      assertKmsInstancesMounted(testPod(objs));
      assert.deepEqual(byName(testPod(objs).containers, 'check').volumeMounts, [{ name: 'credsync', mountPath: OUTPUT_DIR, readOnly: true }]);
    });

    test('classic mode: credsync-init and credsync get it, the app does not', () => {
      const classic = render(onlyInstances(one, { 'sidecar.mode': 'classic' }));
      const pod = deploymentPod(classic);
      assert.deepEqual(names(pod.initContainers), ['credsync-init']);
      assert.deepEqual(names(pod.containers), ['credsync', 'app']);
      assertKmsInstancesMounted(pod);
      assertKmsInstancesMounted(testPod(classic));
    });

    test('credsync validate accepts it without any RAM identity in the environment', () => {
      const r = runValidate(objs, Object.fromEntries(Object.keys(RRSA_ENV).map((k) => [k, ''])));
      assert.equal(r.status, 0, r.stderr);
      // No OpenAPI endpoint: the instances are all there is (RRSA variables unset, yet valid).
      assert.match(r.stdout, /^config OK: identity none, .* KMS https:\/\/[^ ]+ \(instance\), output /);
    });

    test('credsync validate opens the mounted client key: a wrong password is exit 2, one line', () => {
      const wrong = { 'kms-client-key': { ...TEST_SECRETS['kms-client-key'], 'password.txt': '4321\n' } };
      const r = runValidate(objs, {}, wrong);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`KMS instance https://${HZ}`));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });

    test('valid objects', () => assertModels(objs));

    test('no instances: no volume, no mount, no kms.instances', () => {
      const plain = render();
      assertKmsInstancesMounted(deploymentPod(plain), false);
      assertKmsInstancesMounted(testPod(plain), false);
      assert.equal(configOf(plain).kms.instances, undefined);
    });
  });

  describe('two instances ahead of the region\'s gateway, RRSA still projected', () => {
    const objs = render({ set: { 'sidecar.mode': 'classic' }, setJson: { 'config.kms.instances': two } });

    test('config.yaml: both instances in order, CA from the Secret and from the ConfigMap', () => {
      assert.deepEqual(configOf(objs).kms, {
        region: 'cn-hangzhou',
        signature: 'acs3',
        instances: [
          {
            endpoint: HZ,
            region_id: 'cn-hangzhou',
            client_key_file: `${KMS_INSTANCES_DIR}/0/clientKey.json`,
            password_file: `${KMS_INSTANCES_DIR}/0/password.txt`,
            ca_file: `${KMS_INSTANCES_DIR}/0/ca.pem`,
          },
          {
            endpoint: `https://${HZ2}:443`,
            region_id: 'cn-hangzhou',
            client_key_file: `${KMS_INSTANCES_DIR}/1/clientKey.json`,
            password_file: `${KMS_INSTANCES_DIR}/1/password.txt`,
            ca_file: '/etc/credsync/kms-instance-1-ca.pem',
            insecure_skip_verify: true,
          },
        ],
      });
      const cm = find(objs, 'ConfigMap');
      assert.deepEqual(Object.keys(cm.data).sort(), ['config.yaml', 'kms-instance-1-ca.pem']);
      assert.equal(cm.data['kms-instance-1-ca.pem'], INSTANCE_CA);
      assert.equal(configOf(objs).tls, undefined, 'an instance CA is not tls.ca_file');
    });

    test('each Secret projected under its index, with its own key names', () => {
      for (const pod of [deploymentPod(objs), testPod(objs)]) {
        assert.deepEqual(byName(pod.volumes, 'credsync-kms-instances').projected.sources, [
          {
            secret: {
              name: 'kms-client-key',
              items: [
                { key: 'clientKey.json', path: '0/clientKey.json' },
                { key: 'password.txt', path: '0/password.txt' },
                { key: 'ca.pem', path: '0/ca.pem' },
              ],
            },
          },
          {
            secret: {
              name: 'kms-client-key-2',
              items: [
                { key: 'clientKey_KAAP.2.json', path: '1/clientKey.json' },
                { key: 'clientKey_KAAP.2_Password.txt', path: '1/password.txt' },
              ],
            },
          },
        ]);
      }
    });

    test('client keys and the token stay in the credsync containers (classic, test pod)', () => {
      for (const pod of [deploymentPod(objs), testPod(objs)]) {
        assertKmsInstancesMounted(pod);
        assertVolumes(pod);
        assertPodSecurity(pod);
      }
      assert.deepEqual(names(deploymentPod(objs).initContainers), ['credsync-init']);
      assertApp(deploymentPod(objs));
    });

    test('credsync validate accepts it (both client keys opened)', () => {
      assertValidates(objs);
      // Both instances first, then the region's gateway: the order fetches try them.
      assert.match(runValidate(objs).stdout,
        /KMS https:\/\/kst-[^ ]+ \(instance\), https:\/\/kst-[^ ]+ \(instance\), https:\/\/kms\.cn-hangzhou\.aliyuncs\.com, STS https:\/\/sts\.cn-hangzhou\.aliyuncs\.com, output/);
    });
    test('valid objects', () => assertModels(objs));

    test('adding an instance or changing an instance CA rolls the pods', () => {
      const changed = structuredClone(two);
      changed[1].caBundle = INSTANCE_CA.replace('Instance', 'Other');
      const other = render({ set: { 'sidecar.mode': 'classic' }, setJson: { 'config.kms.instances': changed } });
      assert.notEqual(sum(objs), sum(other));
      assert.notEqual(sum(render({ set: { 'sidecar.mode': 'classic' } })), sum(objs));
    });
  });

  test('a parent chart\'s pod gets the client keys in credsync only', () => {
    for (const mode of ['native', 'classic']) {
      const r = renderParent(['--set', `credsync.sidecar.mode=${mode}`,
        '--set-json', `credsync.config.kms.instances=${JSON.stringify(one)}`]);
      assert.equal(r.status, 0, r.stderr);
      const objs = parseObjects(r.stdout);
      const pod = deploymentPod(objs);
      assertKmsInstancesMounted(pod);
      assert.ok(names(allContainers(pod)).includes('migrate') && names(allContainers(pod)).includes('web'));
      assertValidates(objs);
    }
  });

  test('NOTES name the Secrets and give no webhook advice for instances only', () => {
    const r = helm(['install', 'rel', chart, '--dry-run=client', '--namespace', 'apps', ...valueArgs(onlyInstances(one))]);
    assert.equal(r.status, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    assert.match(notes, /KMS instances: 1, tried before any OpenAPI endpoint\. Their client-key Secrets\n\(kms-client-key\) must exist in namespace apps/);
    // A client key is reloaded when its Secret changes: no restart advice.
    assert.match(notes, /To rotate a client key, update its Secret in\nplace/);
    assert.doesNotMatch(notes, /rollout restart/);
    assert.match(notes, /RRSA: not used; only KMS instances with client keys are configured\./);
    assert.doesNotMatch(notes, /webhook must inject|insecureSkipVerify/);
  });

  test('instances only with rrsa.projectToken=true: roleArn is asked for, with the hint', () => {
    const err = renderFails({ ...onlyInstances(one), set: { ...profiles } });
    assert.match(err, /rrsa\.roleArn is required when rrsa\.projectToken is true .*with only config\.kms\.instances credsync uses no RAM identity: set rrsa\.projectToken=false/);
  });

  // Without the schema (helm --skip-schema-validation, or a parent chart's
  // values that bypass it), the templates still name the missing key.
  const renderFailsNoSchema = (instances) => {
    const r = helm(['template', 'rel', chart, '--skip-schema-validation', ...valueArgs(onlyInstances(instances))]);
    assert.notEqual(r.status, 0, 'helm template should fail');
    return r.stderr;
  };
  for (const [what, drop, pattern] of [
    ['endpoint', (i) => delete i.endpoint, /config\.kms\.instances\[1\]\.endpoint is required/],
    ['regionId', (i) => delete i.regionId, /config\.kms\.instances\[1\]\.regionId is required/],
    ['clientKeySecret.name', (i) => delete i.clientKeySecret, /config\.kms\.instances\[1\]\.clientKeySecret\.name is required/],
  ]) {
    test(`without the schema, a missing ${what} is named`, () => {
      const instances = structuredClone(two);
      drop(instances[1]);
      assert.match(renderFailsNoSchema(instances), pattern);
    });
  }

  test('a CA from the Secret and an inline one: refused', () => {
    const instances = [{ ...one[0], clientKeySecret: { name: 'kms-client-key', caKey: 'ca.pem' }, caBundle: INSTANCE_CA }];
    assert.match(renderFails(onlyInstances(instances)), /config\.kms\.instances\[0\]: set clientKeySecret\.caKey or caBundle, not both/);
  });

  test('the same endpoint twice: refused, as the sidecar would', () => {
    const instances = [one[0], { ...one[0], endpoint: `https://${HZ}/`, clientKeySecret: { name: 'kms-client-key-2' } }];
    assert.match(renderFails(onlyInstances(instances)), /config\.kms\.instances\[1\]\.endpoint: same endpoint as config\.kms\.instances\[0\]/);
  });

  const bad = [
    ['an endpoint that is not a string', { endpoint: 443 }, /\/config\/kms\/instances\/0\/endpoint.*got number, want string/],
    ['a plain-HTTP endpoint', { endpoint: 'http://127.0.0.1:8443' }, /\/config\/kms\/instances\/0\/endpoint/],
    ['an endpoint with a path', { endpoint: `${HZ}/v1` }, /\/config\/kms\/instances\/0\/endpoint/],
    ['a missing endpoint', { endpoint: undefined }, /\/config\/kms\/instances\/0.*missing property 'endpoint'/s],
    ['an empty regionId', { regionId: '' }, /\/config\/kms\/instances\/0\/regionId/],
    ['a missing clientKeySecret', { clientKeySecret: undefined }, /missing property 'clientKeySecret'/],
    ['a clientKeySecret without a name', { clientKeySecret: { caKey: 'ca.pem' } }, /\/config\/kms\/instances\/0\/clientKeySecret.*missing property 'name'/s],
    ['a Secret name with capitals', { clientKeySecret: { name: 'KMS-Key' } }, /\/config\/kms\/instances\/0\/clientKeySecret\/name/],
    ['a Secret key with a slash', { clientKeySecret: { name: 'k', caKey: 'certs/ca.pem' } }, /\/config\/kms\/instances\/0\/clientKeySecret\/caKey/],
    ['a snake_case key', { client_key_file: '/keys/ck.json' }, /additional properties 'client_key_file'/],
    ['a CA bundle that is not PEM', { caBundle: 'not a certificate' }, /\/config\/kms\/instances\/0\/caBundle/],
    ['insecureSkipVerify as a string', { insecureSkipVerify: 'yes' }, /\/config\/kms\/instances\/0\/insecureSkipVerify/],
  ];
  for (const [what, change, pattern] of bad) {
    test(`the schema refuses ${what}`, () => {
      const instance = { ...one[0], ...change };
      for (const k of Object.keys(instance)) if (instance[k] === undefined) delete instance[k];
      const err = renderFails(onlyInstances([instance]));
      assert.match(err, /values don't meet the specifications of the schema/);
      assert.match(err, pattern);
    });
  }
});

// credsync validate on a config with local_api: the path secret comes from
// the environment (CREDSYNC_LOCAL_API_PATH_SECRET), as the Secret gives it.
function assertValidatesLocalApi(t, objs, secret) {
  const r = runValidate(objs, { CREDSYNC_LOCAL_API_PATH_SECRET: secret });
  assert.equal(r.status, 0, `credsync validate refused the rendered config: ${r.stderr.trim()}`);
}

describe('helm template: localApi.enabled (the credentials URI)', () => {
  const LOCAL_API_SECRET = 'rel-credsync-local-api';
  const secretRef = (name = LOCAL_API_SECRET, key = 'path-secret') => ({ secretKeyRef: { name, key } });
  const URI_ENV = {
    CREDSYNC_LOCAL_API_PATH_SECRET: secretRef(),
    ALIBABA_CLOUD_CREDENTIALS_URI: 'http://127.0.0.1:8190/$(CREDSYNC_LOCAL_API_PATH_SECRET)/v1/credentials/default',
    ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
  };

  test('off by default: no local_api, no Secret, the app on the file', () => {
    const objs = render();
    assert.equal(configOf(objs).local_api, undefined);
    assert.equal(objs.filter((o) => o.kind === 'Secret').length, 0);
    assertApp(deploymentPod(objs));
    assert.equal(envMap(deploymentPod(objs).initContainers[0]).CREDSYNC_LOCAL_API_PATH_SECRET, undefined);
  });

  test('on, with app.credentialsUri: the URI by $(VAR) expansion, no file variable, no RRSA variables in the app', async (t) => {
    const objs = render({ set: { 'localApi.enabled': 'true', 'app.credentialsUri': 'true' } });
    assert.deepEqual(configOf(objs).local_api, {
      listen: '127.0.0.1:8190', path_secret_env: 'CREDSYNC_LOCAL_API_PATH_SECRET', refetch_within: '60s',
    });
    const pod = deploymentPod(objs);
    const credsync = pod.initContainers[0];
    assertCredsyncContainer(credsync, { native: true });
    assert.deepEqual(envMap(credsync).CREDSYNC_LOCAL_API_PATH_SECRET, secretRef());
    const app = byName(pod.containers, 'app');
    // Kubernetes expands $(VAR) only from variables defined before it.
    assert.deepEqual(app.env.map((e) => e.name), Object.keys(URI_ENV));
    assert.deepEqual(envMap(app), URI_ENV);
    for (const k of Object.keys(RRSA_ENV)) assert.equal(envMap(app)[k], undefined, `${k} not in the app`);
    // credsync check reads the file, named on its command line.
    assert.deepEqual(app.args, ['check', '--socket', `${OUTPUT_DIR}/credsync.sock`, '--file', `${OUTPUT_DIR}/credentials.ini`, '--every', '60s']);
    assert.deepEqual(app.volumeMounts, [{ name: 'credsync', mountPath: OUTPUT_DIR, readOnly: true }]);
    assertVolumes(pod);
    assertPodSecurity(pod);

    const secret = find(objs, 'Secret', LOCAL_API_SECRET);
    assert.equal(secret.type, 'Opaque');
    const value = Buffer.from(secret.data['path-secret'], 'base64').toString('utf8');
    assert.match(value, /^[A-Za-z0-9]{48}$/, 'at least 256 bits of the characters the sidecar takes');
    await assertModels(objs);
    assertValidatesLocalApi(t, objs, value);
  });

  test('a new path secret on each helm template (no cluster to look it up in)', () => {
    const secretOf = (objs) => find(objs, 'Secret', LOCAL_API_SECRET).data['path-secret'];
    const set = { 'localApi.enabled': 'true' };
    assert.notEqual(secretOf(render({ set })), secretOf(render({ set })));
  });

  test('the installed path secret is kept across upgrades (lookup)', async () => {
    const set = ['--set', 'localApi.enabled=true', '-f', minimal];
    const first = render({ set: { 'localApi.enabled': 'true' } });
    const secret = find(first, 'Secret', LOCAL_API_SECRET);
    const { objs, requested } = await renderAgainstCluster(installed(secret), set);
    assert.ok(requested.includes(`/api/v1/namespaces/apps/secrets/${LOCAL_API_SECRET}`), 'the chart looked the Secret up');
    assert.deepEqual(find(objs, 'Secret', LOCAL_API_SECRET).data, secret.data);
    // One without the key gets a new secret.
    const empty = await renderAgainstCluster(installed({ ...secret, data: { other: secret.data['path-secret'] } }), set);
    assert.notEqual(find(empty.objs, 'Secret', LOCAL_API_SECRET).data['path-secret'], secret.data['path-secret']);
  });

  test('without app.credentialsUri the app keeps the file; classic mode gives credsync-init the secret too', async () => {
    const objs = render({ set: { 'localApi.enabled': 'true', 'sidecar.mode': 'classic' } });
    const pod = deploymentPod(objs);
    assertApp(pod);
    for (const c of [byName(pod.initContainers, 'credsync-init'), byName(pod.containers, 'credsync')]) {
      assert.deepEqual(envMap(c).CREDSYNC_LOCAL_API_PATH_SECRET, secretRef(), c.name);
    }
    await assertModels(objs);
  });

  test('pathSecret.existingSecret: no Secret rendered, yours referenced', async () => {
    const objs = render({ set: { 'localApi.enabled': 'true', 'app.credentialsUri': 'true', 'localApi.pathSecret.existingSecret': 'my-path-secret', 'localApi.pathSecret.key': 'secret.txt' } });
    assert.equal(objs.filter((o) => o.kind === 'Secret').length, 0);
    const pod = deploymentPod(objs);
    assert.deepEqual(envMap(pod.initContainers[0]).CREDSYNC_LOCAL_API_PATH_SECRET, secretRef('my-path-secret', 'secret.txt'));
    assert.deepEqual(envMap(byName(pod.containers, 'app')).CREDSYNC_LOCAL_API_PATH_SECRET, secretRef('my-path-secret', 'secret.txt'));
    await assertModels(objs);
  });

  test('port and refetchWithin are values', () => {
    const objs = render({ set: { 'localApi.enabled': 'true', 'app.credentialsUri': 'true', 'localApi.port': '18190', 'localApi.refetchWithin': '2m' } });
    assert.deepEqual(configOf(objs).local_api, {
      listen: '127.0.0.1:18190', path_secret_env: 'CREDSYNC_LOCAL_API_PATH_SECRET', refetch_within: '120s',
    });
    assert.equal(envMap(byName(deploymentPod(objs).containers, 'app')).ALIBABA_CLOUD_CREDENTIALS_URI,
                 'http://127.0.0.1:18190/$(CREDSYNC_LOCAL_API_PATH_SECRET)/v1/credentials/default');
  });

  test('refused: the URI without the local API, a port taken, refetchWithin out of 10s..600s', () => {
    assert.match(renderFails({ set: { 'app.credentialsUri': 'true' } }), /app.credentialsUri.*needs localApi.enabled=true/);
    assert.match(renderFails({ set: { 'localApi.enabled': 'true', 'localApi.port': '9808' } }), /localApi.port: must differ from config.control.httpPort/);
    assert.match(renderFails({ set: { 'localApi.enabled': 'true', 'config.control.tcp.enabled': 'true', 'localApi.port': '9901' } }), /localApi.port: must differ from config.control.tcp.port/);
    for (const bad of ['9s', '601s', '10m1s']) {
      assert.match(renderFails({ set: { 'localApi.enabled': 'true', 'localApi.refetchWithin': bad } }), /localApi.refetchWithin: must be whole seconds from 10s to 600s/, bad);
    }
  });
});

describe('helm template: app.enabled=false', () => {
  test('native: credsync runs alone as an ordinary container', async () => {
    const objs = render({ set: { 'app.enabled': 'false' } });
    const pod = deploymentPod(objs);
    assert.equal(pod.initContainers, undefined);
    assert.deepEqual(names(pod.containers), ['credsync']);
    assertCredsyncContainer(pod.containers[0], { native: false });
    assertVolumes(pod);
    await assertModels(objs);
  });
  test('classic: credsync-init then credsync', async () => {
    const objs = render({ set: { 'app.enabled': 'false', 'sidecar.mode': 'classic' } });
    const pod = deploymentPod(objs);
    assert.deepEqual(names(pod.initContainers), ['credsync-init']);
    assert.deepEqual(names(pod.containers), ['credsync']);
    await assertModels(objs);
  });
  test('deployment.enabled=false and tests.enabled=false leave the ServiceAccount and ConfigMap', () => {
    const objs = render({ set: { 'deployment.enabled': 'false', 'tests.enabled': 'false' } });
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'ServiceAccount']);
  });
});

describe('helm template: image.digest (pinning the image)', () => {
  const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
  const REPOSITORY = 'registry.cn-hangzhou.aliyuncs.com/team/credsync';
  const versionLabels = (objs) => allLabels(objs).filter(([, k]) => k === 'app.kubernetes.io/version').map(([, , v]) => v);

  for (const mode of ['native', 'classic']) {
    test(`${mode}: every container pulls repository:tag@digest; no label carries the digest`, async () => {
      const objs = render({ set: { 'image.repository': REPOSITORY, 'image.tag': '0.1.0', 'image.digest': DIGEST, 'sidecar.mode': mode } });
      const want = `${REPOSITORY}:0.1.0@${DIGEST}`;
      // The example app and the test pod's checker run the credsync image too.
      for (const pod of [deploymentPod(objs), testPod(objs)]) {
        assert.ok(allContainers(pod).length >= 2);
        for (const c of allContainers(pod)) assert.equal(c.image, want, `${c.name} image`);
      }
      assertLabelValues(objs);
      const versions = versionLabels(objs);
      assert.equal(versions.length, 5, 'ServiceAccount, ConfigMap, Deployment, its pod template, test Pod');
      for (const v of versions) assert.equal(v, '0.1.0');
      await assertModels(objs);
    });
  }

  test('a tag longer than a label value: the image keeps it, the version label is cut to 63 valid characters', () => {
    // 83 characters; the 63rd is a dot, which a label value cannot end with.
    const tag = `0.1.0-build.${'7'.repeat(50)}.${'a'.repeat(20)}`;
    const objs = render({ set: { 'image.repository': REPOSITORY, 'image.tag': tag, 'image.digest': DIGEST } });
    for (const c of allContainers(deploymentPod(objs))) assert.equal(c.image, `${REPOSITORY}:${tag}@${DIGEST}`, c.name);
    assertLabelValues(objs);
    for (const v of versionLabels(objs)) assert.equal(v, `0.1.0-build.${'7'.repeat(50)}`);
  });

  test('without the schema, a digest written into the tag still never reaches a label', () => {
    const objs = render({ args: ['--skip-schema-validation'], set: { 'image.tag': `0.1.0@${DIGEST}` } });
    assert.equal(deploymentPod(objs).initContainers[0].image, `ghcr.io/credsync/credsync:0.1.0@${DIGEST}`);
    assertLabelValues(objs);
    for (const v of versionLabels(objs)) assert.equal(v, '0.1.0');
  });

  test('without image.digest, the image is repository:tag and the version label the appVersion', () => {
    const objs = render();
    for (const c of allContainers(deploymentPod(objs))) assert.equal(c.image, 'ghcr.io/credsync/credsync:0.1.0', c.name);
    assertLabelValues(objs);
    for (const v of versionLabels(objs)) assert.equal(v, '0.1.0');
  });
  test('a digest that is not sha256:<64 hex> is refused by the schema', () => {
    const err = renderFails({ set: { 'image.digest': 'sha256:abc' } });
    assert.match(err, /\/image\/digest/);
  });
  test('a tag carrying a digest is refused by the schema (use image.digest)', () => {
    const err = renderFails({ set: { 'image.tag': `0.1.0@${DIGEST}` } });
    assert.match(err, /\/image\/tag/);
  });
});

describe('helm template: serviceAccount.create=false', () => {
  const objs = render({ set: { 'serviceAccount.create': 'false', 'serviceAccount.name': 'existing-sa' } });
  test('no ServiceAccount; the pods use the named one', async () => {
    none(objs, 'ServiceAccount');
    assert.equal(deploymentPod(objs).serviceAccountName, 'existing-sa');
    assert.equal(testPod(objs).serviceAccountName, 'existing-sa');
    await assertModels(objs);
  });
});

describe('helm template: rrsa.projectToken=false (ack-pod-identity-webhook)', () => {
  const webhook = {
    'rrsa.projectToken': 'false',
    'rrsa.roleName': 'credsync-demo',
    'config.kms.region': 'cn-hangzhou',
    'config.profiles[0].name': 'default',
    'config.profiles[0].secretName': 'acs/ram/user/demo-app',
  };
  const objs = render({ files: [], set: webhook });
  const ONLY = 'pod-identity.alibabacloud.com/only-containers';
  const podAnnotations = (o) => find(o, 'Deployment').spec.template.metadata.annotations;
  // The containers that are credsync's, by the names the chart gives them.
  const credsyncContainers = (pod) => names(allContainers(pod)).filter((n) => n === 'credsync' || n === 'credsync-init');

  // The webhook injects into every container unless only-containers names
  // some; an app given credsync's RRSA identity would use it before the
  // credentials file. The annotation must name exactly credsync's containers.
  for (const [what, opts, want] of [
    ['native', {}, ['credsync']],
    ['auto below 1.29 (classic)', { kubeVersion: '1.28.0' }, ['credsync-init', 'credsync']],
    ['classic', { set: { 'sidecar.mode': 'classic' } }, ['credsync-init', 'credsync']],
    ['native without the app (credsync an ordinary container)', { set: { 'app.enabled': 'false' } }, ['credsync']],
  ]) {
    test(`${what}: the pods' only-containers annotation names exactly the credsync containers`, () => {
      const o = render({ files: [], ...opts, set: { ...webhook, ...opts.set } });
      const pod = deploymentPod(o);
      assert.deepEqual(podAnnotations(o)[ONLY].split(','), want);
      assert.deepEqual(credsyncContainers(pod).sort(), [...want].sort(), 'the pod\'s credsync containers');
      if (!opts.set?.['app.enabled']) assert.ok(names(pod.containers).includes('app'), 'the app is there, and not named');
      assert.match(podAnnotations(o)['checksum/credsync-config'], /^[0-9a-f]{64}$/);
      const tests = o.filter((x) => x.kind === 'Pod');
      for (const t of tests) {
        assert.equal(t.metadata.annotations[ONLY], 'credsync', 'the helm test pod');
        assert.deepEqual(credsyncContainers(t.spec), ['credsync']);
      }
      assert.equal(tests.length, opts.kubeVersion === '1.28.0' ? 0 : 1);
    });
  }

  test('with rrsa.projectToken (the default) the chart projects the token itself and sets no such annotation', () => {
    const o = render();
    assert.equal(podAnnotations(o)[ONLY], undefined);
    assert.equal(find(o, 'Pod').metadata.annotations[ONLY], undefined);
  });

  test('deployment.podAnnotations are kept, and one of the same name replaces the chart\'s', () => {
    const extra = { 'prometheus.io/scrape': 'true', 'pod-identity.alibabacloud.com/skip-containers': 'app' };
    let ann = podAnnotations(render({ files: [], set: webhook, setJson: { 'deployment.podAnnotations': extra } }));
    assert.deepEqual(ann, { ...extra, [ONLY]: 'credsync', 'checksum/credsync-config': ann['checksum/credsync-config'] });
    ann = podAnnotations(render({ files: [], set: webhook, setJson: { 'deployment.podAnnotations': { [ONLY]: 'credsync,debug' } } }));
    assert.equal(ann[ONLY], 'credsync,debug');
  });

  test('a parent chart gets it from credsync.podAnnotations, in both modes', () => {
    for (const [mode, want] of [['native', ['credsync']], ['classic', ['credsync-init', 'credsync']]]) {
      const r = renderParent(['--set', 'credsync.rrsa.projectToken=false', '--set', `credsync.sidecar.mode=${mode}`]);
      assert.equal(r.status, 0, r.stderr);
      const o = parseObjects(r.stdout);
      const pod = deploymentPod(o);
      assert.deepEqual(podAnnotations(o)[ONLY].split(','), want);
      assert.deepEqual(credsyncContainers(pod).sort(), [...want].sort());
      for (const other of ['migrate', 'web']) assert.ok(names(allContainers(pod)).includes(other));
      assertVolumes(pod, { projectToken: false });
    }
    const plain = parseObjects(renderParent().stdout);
    assert.equal(podAnnotations(plain)[ONLY], undefined, 'not with rrsa.projectToken');
  });

  test('NOTES name the annotation and how to check that the init container was injected', () => {
    const r = helm(['install', 'rel', chart, '--dry-run=client', '--namespace', 'apps', ...valueArgs({ files: [], set: webhook })]);
    assert.equal(r.status, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    assert.match(notes, /pod-identity\.alibabacloud\.com\/only-containers=credsync,\n/);
    assert.match(notes, /Whether it mutates init containers .* is not verified/s);
    assert.match(notes, /jsonpath='\{\.items\[0\]\.spec\.initContainers\[0\]\.env\[\*\]\.name\}'/);
  });

  test('no RRSA variables or token volume from the chart', () => {
    for (const pod of [deploymentPod(objs), testPod(objs)]) {
      assertVolumes(pod, { projectToken: false });
      for (const c of allContainers(pod)) {
        if (c.name.startsWith('credsync')) assertCredsyncEnvAndMounts(c, { projectToken: false });
      }
    }
  });

  test('the ServiceAccount carries the webhook annotation', () => {
    const sa = find(objs, 'ServiceAccount');
    assert.deepEqual(sa.metadata.annotations, { 'pod-identity.alibabacloud.com/role-name': 'credsync-demo' });
  });

  test('credsync validate accepts the config with the variables the webhook injects', async () => {
    assertValidates(objs, {
      ALIBABA_CLOUD_OIDC_TOKEN_FILE: '/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token',
      ALIBABA_CLOUD_STS_ENDPOINT: 'sts-vpc.cn-hangzhou.aliyuncs.com',
      ALIBABA_CLOUD_STS_REGION: 'cn-hangzhou',
      ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED: 'true',
    });
    await assertModels(objs);
  });
});

describe('helm template: config.identity.type=ecs_ram_role (the node\'s RAM role)', () => {
  const base = {
    'rrsa.projectToken': 'false',
    'config.identity.type': 'ecs_ram_role',
    'config.kms.region': 'cn-hangzhou',
    'config.profiles[0].name': 'default',
    'config.profiles[0].secretName': 'acs/ram/user/demo-app',
  };
  const objs = render({
    files: [],
    set: {
      ...base,
      'config.identity.roleName': 'ack-node-role',
      'config.identity.metadataEndpoint': 'http://100.100.100.200',
      'config.identity.imdsv1Fallback': 'false',
      'config.identity.metadataTokenTtl': '1h',
    },
  });

  test('identity keys, and no RRSA token or variables', () => {
    assert.deepEqual(configOf(objs).identity, {
      type: 'ecs_ram_role',
      role_name: 'ack-node-role',
      metadata_endpoint: 'http://100.100.100.200',
      imdsv1_fallback: false,
      metadata_token_ttl: '1h',
      session_duration: '1h',
    });
    for (const pod of [deploymentPod(objs), testPod(objs)]) assertVolumes(pod, { projectToken: false });
  });

  test('the role can be left to discovery', () => {
    assert.deepEqual(configOf(render({ files: [], set: base })).identity, { type: 'ecs_ram_role', session_duration: '1h' });
  });

  test('refused while the chart projects an RRSA token', () => {
    const rrsa = {
      'rrsa.projectToken': 'true',
      'rrsa.roleArn': RRSA_ENV.ALIBABA_CLOUD_ROLE_ARN,
      'rrsa.oidcProviderArn': RRSA_ENV.ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
    };
    assert.throws(() => render({ files: [], set: { ...base, ...rrsa } }),
      /config.identity.type ecs_ram_role uses the node's RAM role: set rrsa.projectToken=false/);
  });

  test('the schema refuses an unknown identity type and an https metadata endpoint', () => {
    assert.throws(() => render({ files: [], set: { ...base, 'config.identity.type': 'static' } }), /type/);
    assert.throws(() => render({ files: [], set: { ...base, 'config.identity.metadataEndpoint': 'https://100.100.100.200' } }),
      /metadataEndpoint/);
  });

  test('credsync validate accepts the config', async () => {
    assertValidates(objs);
    await assertModels(objs);
  });
});

describe('helm template: ci/full-values.yaml (every value set)', () => {
  const objs = render({ files: [full] });

  test('names, image, replicas, scheduling, pull secrets', () => {
    const dep = find(objs, 'Deployment', 'payments-credsync');
    assert.equal(dep.spec.replicas, 3);
    assert.equal(dep.metadata.annotations['example.com/owner'], 'payments');
    const pod = dep.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'payments');
    assert.equal(pod.terminationGracePeriodSeconds, 45);
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'regcred' }]);
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(pod.tolerations[0].key, 'dedicated');
    assert.ok(pod.affinity.podAntiAffinity);
    assert.equal(dep.spec.template.metadata.labels.tier, 'backend');
    assert.equal(dep.spec.template.metadata.annotations['prometheus.io/port'], '9818');
    const credsync = byName(pod.containers, 'credsync');
    assertCredsyncContainer(credsync, {
      native: false, httpPort: 9818, tcpPort: 9911, image: 'registry.example.com/platform/credsync:0.1.0-rc1',
    });
    assert.equal(credsync.imagePullPolicy, 'Always');
    assert.deepEqual(credsync.startupProbe, {
      httpGet: { path: '/readyz', port: 'probes' }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 120,
    });
    assert.equal(credsync.livenessProbe.failureThreshold, 4);
    assert.equal(credsync.readinessProbe.periodSeconds, 5);
    assert.deepEqual(credsync.resources, { requests: { cpu: '20m', memory: '24Mi' }, limits: { cpu: '200m', memory: '96Mi' } });
    const env = envMap(credsync);
    assert.equal(env.ALIBABA_CLOUD_ROLE_SESSION_NAME, 'payments');
    assert.deepEqual(env.NODE_NAME, { fieldRef: { fieldPath: 'spec.nodeName' } });
    assert.equal(env.ALIBABA_CLOUD_ROLE_ARN, 'acs:ram::123456789012:role/payments-credsync');
    assert.deepEqual(byName(pod.initContainers, 'credsync-init').args.slice(-2), ['--timeout', '2m']);
    assert.equal(byName(pod.containers, 'app').image, 'registry.example.com/payments/api:2.4.1');
    assert.deepEqual(byName(pod.containers, 'app').args.slice(-2), ['--every', '30s']);
    assertVolumes(pod, { sizeLimit: '8Mi', configMap: 'payments-credsync', expirationSeconds: 7200 });
    assertPodSecurity(pod, 2000);
  });

  test('the instances\' Secrets, projected into the credsync containers only', () => {
    for (const pod of [deploymentPod(objs), testPod(objs)]) {
      assertKmsInstancesMounted(pod);
      assert.deepEqual(byName(pod.volumes, 'credsync-kms-instances').projected, {
        defaultMode: 0o440,
        sources: [
          {
            secret: {
              name: 'payments-kms-a',
              items: [
                { key: 'ck.json', path: '0/clientKey.json' },
                { key: 'pw.txt', path: '0/password.txt' },
                { key: 'PrivateKmsCA.pem', path: '0/ca.pem' },
              ],
            },
          },
          {
            secret: {
              name: 'payments-kms-b',
              items: [{ key: 'clientKey.json', path: '1/clientKey.json' }, { key: 'password.txt', path: '1/password.txt' }],
            },
          },
        ],
      });
    }
  });

  test('the ServiceAccount keeps extra annotations', () => {
    const sa = find(objs, 'ServiceAccount', 'payments');
    assert.deepEqual(sa.metadata.annotations, { team: 'payments' });
  });

  test('config.yaml, key by key', () => {
    const config = configOf(objs);
    assert.deepEqual(config.identity, {
      session_duration: '2h',
      policy: '{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:GetSecretValue","Resource":"*"}]}',
      sts_endpoint: 'sts-vpc.cn-shanghai.aliyuncs.com',
      sts_region: 'cn-shanghai',
      vpc_endpoint: true,
    });
    assert.deepEqual(config.kms, {
      region: 'cn-shanghai',
      endpoints: ['kst-shh65f176a0ogplgq.cryptoservice.kms.aliyuncs.com', 'https://kms-vpc.cn-shanghai.aliyuncs.com'],
      vpc_endpoint: true,
      signature: 'hmac-sha1',
      circuit_failure_threshold: 5,
      circuit_open_for: '10s',
      circuit_max_open_for: '2m',
      instances: [
        {
          endpoint: 'kst-shh75f176a0ogplgq.cryptoservice.kms.aliyuncs.com',
          region_id: 'cn-shanghai',
          client_key_file: `${KMS_INSTANCES_DIR}/0/clientKey.json`,
          password_file: `${KMS_INSTANCES_DIR}/0/password.txt`,
          ca_file: `${KMS_INSTANCES_DIR}/0/ca.pem`,
          insecure_skip_verify: false,
        },
        {
          endpoint: 'https://kst-shh85f176a0ogplgq.cryptoservice.kms.aliyuncs.com:8443',
          region_id: 'cn-shanghai',
          client_key_file: `${KMS_INSTANCES_DIR}/1/clientKey.json`,
          password_file: `${KMS_INSTANCES_DIR}/1/password.txt`,
          ca_file: '/etc/credsync/kms-instance-1-ca.pem',
          insecure_skip_verify: true,
        },
      ],
    });
    const cm = find(objs, 'ConfigMap');
    assert.deepEqual(Object.keys(cm.data).sort(), ['ca.pem', 'config.yaml', 'kms-instance-1-ca.pem']);
    assert.match(cm.data['kms-instance-1-ca.pem'], /^-----BEGIN CERTIFICATE-----\nMIIB.*InstanceCA.*\n-----END CERTIFICATE-----\n$/);
    assert.deepEqual(config.output, { directory: OUTPUT_DIR, file_mode: '0440', group: 2000 });
    assert.deepEqual(config.refresh, {
      interval: '30m',
      jitter: 0.2,
      rotation_delay: '2m',
      rotation_jitter: '1m',
      startup_jitter: '5s',
      retry_initial_backoff: '1s',
      retry_max_backoff: '20s',
      throttled_max_backoff: '3m',
      on_demand_burst: 3,
      on_demand_refill: '5m',
    });
    assert.deepEqual(config.control, {
      socket: `${OUTPUT_DIR}/credsync.sock`,
      http_address: '0.0.0.0:9818',
      tcp_address: '127.0.0.1:9911',
      refresh_timeout: '20s',
    });
    assert.deepEqual(config.http, { connect_timeout: '3s', request_timeout: '15s' });
    assert.deepEqual(config.log, { level: 'debug' });
    assert.deepEqual(config.tls, { ca_file: '/etc/credsync/ca.pem' });
    assert.equal(config.profiles.length, 2);
    assert.deepEqual(config.hooks, [
      { name: 'reload-api', signal: { signal: 'SIGUSR1', process: 'api-server' }, profiles: ['payments'] },
      { signal: { pid_file: '/var/run/credsync/api.pid' } },
      { name: 'notify', command: ['/bin/sh', '-c', 'echo "generation $CREDSYNC_GENERATION"'], timeout: '10s' },
    ]);
    assert.equal(find(objs, 'Deployment').spec.template.spec.shareProcessNamespace, true);
  });

  test('credsync validate accepts the config', () => assertValidates(objs));
  test('valid objects', () => assertModels(objs));
});

describe('metrics: PodMonitor and PrometheusRule (Prometheus Operator)', () => {
  const both = { 'metrics.podMonitor.enabled': 'true', 'metrics.prometheusRule.enabled': 'true' };
  const rulesOf = (objs) => find(objs, 'PrometheusRule').spec.groups.flatMap((g) => g.rules);
  const alert = (objs, name) => {
    const hit = rulesOf(objs).find((r) => r.alert === name);
    assert.ok(hit, `alert ${name}`);
    return hit;
  };

  test('docs/operations.md lists exactly the metric families the sidecar registers', () => {
    const source = fs.readFileSync(path.join(repo, 'sidecar', 'metrics', 'sidecar_metrics.cc'), 'utf8');
    const registered = [...new Set([...source.matchAll(/"(credsync_[a-z0-9_]+)"/g)].map((m) => m[1]))].sort();
    assert.deepEqual([...DOC_METRICS.keys()].sort(), registered);
  });

  test('off by default', () => {
    const objs = render();
    none(objs, 'PodMonitor');
    none(objs, 'PrometheusRule');
  });

  for (const [what, opts] of [
    ['native', {}],
    ['classic', { set: { 'sidecar.mode': 'classic' } }],
    ['credsync alone (app.enabled=false)', { set: { 'app.enabled': 'false' } }],
    ['another HTTP port', { set: { 'config.control.httpPort': '9818' } }],
  ]) {
    test(`${what}: the PodMonitor selects the Deployment's pods, not the test pod, on credsync's port probes`, async () => {
      const objs = render({ ...opts, set: { ...both, ...opts.set } });
      const pm = find(objs, 'PodMonitor', 'rel-credsync');
      assert.deepEqual(pm.spec.podMetricsEndpoints, [{ port: 'probes', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
      assert.deepEqual(pm.spec.selector.matchLabels, find(objs, 'Deployment').spec.selector.matchLabels);
      assert.equal(objs.filter((o) => o.kind === 'Pod').length, 1, 'the helm test pod is rendered, and left out');
      await assertModels(objs); // assertPodMonitor and assertPrometheusRule
      assertValidates(objs);
    });
  }

  test('labels: the chart\'s and metrics.*.labels on each object', () => {
    const objs = render({ set: both, setJson: { 'metrics.podMonitor.labels': { release: 'kps' }, 'metrics.prometheusRule.labels': { role: 'alert-rules' } } });
    assert.equal(find(objs, 'PodMonitor').metadata.labels.release, 'kps');
    assert.equal(find(objs, 'PrometheusRule').metadata.labels.role, 'alert-rules');
    for (const kind of ['PodMonitor', 'PrometheusRule']) {
      assert.equal(find(objs, kind).metadata.labels['app.kubernetes.io/instance'], 'rel');
    }
    assertLabelValues(objs);
  });

  test('scrapeTimeout longer than interval is refused', () => {
    const err = renderFails({ set: { ...both, 'metrics.podMonitor.interval': '10s', 'metrics.podMonitor.scrapeTimeout': '1m' } });
    assert.match(err, /metrics\.podMonitor\.scrapeTimeout 1m is longer than metrics\.podMonitor\.interval 10s/);
    assert.equal(find(render({ set: { ...both, 'metrics.podMonitor.interval': '1m', 'metrics.podMonitor.scrapeTimeout': '60s' } }), 'PodMonitor').spec.podMetricsEndpoints[0].scrapeTimeout, '60s');
  });

  test('deployment.enabled=false: podSelector is required, and then used', () => {
    const off = { ...both, 'deployment.enabled': 'false', 'tests.enabled': 'false' };
    assert.match(renderFails({ set: off }), /metrics\.podMonitor\.podSelector: set the labels of the pods that run credsync/);
    const objs = render({ set: off, setJson: { 'metrics.podMonitor.podSelector': { 'app.kubernetes.io/name': 'myapp' } } });
    assert.deepEqual(find(objs, 'PodMonitor').spec.selector, { matchLabels: { 'app.kubernetes.io/name': 'myapp' } });
  });

  test('a parent chart\'s pods: the PodMonitor finds credsync\'s port in them, in both modes', () => {
    for (const mode of ['native', 'classic']) {
      const r = renderParent(['--set', `credsync.sidecar.mode=${mode}`, '--set', 'credsync.metrics.podMonitor.enabled=true',
                              '--set', 'credsync.metrics.podMonitor.podSelector.app\\.kubernetes\\.io/name=myapp']);
      assert.equal(r.status, 0, r.stderr);
      const objs = parseObjects(r.stdout);
      assertPodMonitor(find(objs, 'PodMonitor'), objs);
    }
  });

  test('the schema refuses a duration Prometheus would not take and a bad label', () => {
    for (const [set, pattern] of [
      [{ 'metrics.podMonitor.interval': '30 seconds' }, /\/metrics\/podMonitor\/interval/],
      [{ 'metrics.podMonitor.scrapeTimeout': '1.5s' }, /\/metrics\/podMonitor\/scrapeTimeout/],
      [{ 'metrics.prometheusRule.for': '' }, /\/metrics\/prometheusRule\/for/],
      [{ 'metrics.prometheusRule.profileStaleAfter': '3 hours' }, /\/metrics\/prometheusRule\/profileStaleAfter/],
      [{ 'metrics.podMonitor.labels.release': 'not a label value' }, /\/metrics\/podMonitor\/labels/],
      [{ 'metrics.podMonitor.scrape': 'true' }, /additional properties 'scrape'/],
    ]) {
      const err = renderFails({ setString: set });
      assert.match(err, /values don't meet the specifications of the schema/);
      assert.match(err, pattern);
    }
  });

  describe('the alerts', () => {
    const objs = render({ set: both });

    test('exactly those of docs/operations.md#alerts', () => {
      assert.deepEqual(rulesOf(objs).map((r) => r.alert), DOC_ALERTS);
      assert.ok(anchorsOf(OPERATIONS_MD).has('alerts'), 'the runbook anchor exists');
    });

    test('each has expr, for, severity, summary; every metric is one credsync exports, in the release\'s namespace', () => {
      assertPrometheusRule(find(objs, 'PrometheusRule'));
      assert.deepEqual(objs.filter((o) => o.kind === 'PrometheusRule').map((o) => o.metadata.namespace), ['apps']);
    });

    test('the alerts docs/operations.md asks for, on the series it names', () => {
      const exprs = Object.fromEntries(rulesOf(objs).map((r) => [r.alert, r.expr]));
      assert.equal(exprs.CredsyncNotReady, 'credsync_ready{namespace="apps"} == 0');
      assert.equal(exprs.CredsyncKmsEndpointCircuitOpened, 'increase(credsync_kms_endpoint_circuit_opened_total{namespace="apps"}[15m]) > 0');
      assert.equal(exprs.CredsyncKmsClientKeyReloadFailed, 'increase(credsync_kms_instance_client_key_reloads_total{namespace="apps", result="error"}[1h]) > 0');
      assert.equal(exprs.CredsyncHookFailed, 'increase(credsync_hook_runs_total{namespace="apps", result!="ok"}[1h]) > 0');
      assert.equal(exprs.CredsyncListenerConnectionsRefused, 'increase(credsync_listener_connections_refused_total{namespace="apps"}[15m]) > 0');
      assert.match(exprs.CredsyncFetchesFailing, /credsync_fetches_total\{namespace="apps", result="failure"\}\[15m\]\)\) > 0\nunless on \(namespace, pod, profile\)\n.*credsync_fetches_total\{namespace="apps", result="success"\}\[15m\]\)\) > 0$/);
      assert.equal(alert(objs, 'CredsyncNotReady').labels.severity, 'critical');
    });

    test('conditions wait metrics.prometheusRule.for; events fire at once', () => {
      const conditions = ['CredsyncNotReady', 'CredsyncProfileStale', 'CredsyncFetchesFailing'];
      for (const o of [objs, render({ set: { ...both, 'metrics.prometheusRule.for': '30m' } })]) {
        const want = o === objs ? '10m' : '30m';
        for (const r of rulesOf(o)) assert.equal(r.for, conditions.includes(r.alert) ? want : '0m', r.alert);
      }
    });

    test('a stale profile: three refresh intervals, or profileStaleAfter', () => {
      const threshold = (o) => Number(alert(o, 'CredsyncProfileStale').expr.match(/^credsync_profile_seconds_since_last_success\{namespace="apps"\} > (\d+)$/)[1]);
      assert.equal(threshold(objs), 3 * 3600);
      for (const [interval, seconds] of [['30m', 5400], ['1h30m', 16200], ['1.5h', 16200], ['90s', 270], ['2500ms', 8]]) {
        assert.equal(threshold(render({ set: { ...both, 'config.refresh.interval': interval } })), seconds, interval);
      }
      assert.equal(threshold(render({ set: { ...both, 'metrics.prometheusRule.profileStaleAfter': '2h' } })), 7200);
    });

    test('Prometheus\'s placeholders reach the annotations unrendered', () => {
      assert.equal(alert(objs, 'CredsyncNotReady').annotations.summary, 'credsync in {{ $labels.namespace }}/{{ $labels.pod }} is not ready');
    });
  });
});

// ---------------------------------------------------------------------------
// The injector (injector.*): `credsync injector serve` behind a
// MutatingWebhookConfiguration (docs/install.md, "Inject into an existing app").

const INJECTOR_VALUES = path.join(ciDir, 'injector-values.yaml');
const INJECTOR = 'rel-credsync-injector';
const INJECTOR_DNS = [INJECTOR, `${INJECTOR}.apps`, `${INJECTOR}.apps.svc`, `${INJECTOR}.apps.svc.cluster.local`];
const INJECTOR_TLS_DIR = '/etc/credsync-injector/tls';
const RBAC_KINDS = ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'];
const renderInjector = ({ files = [INJECTOR_VALUES], ...opts } = {}) => render({ files, ...opts });
const webhookOf = (objs) => {
  const config = find(objs, 'MutatingWebhookConfiguration');
  assert.equal(config.webhooks.length, 1);
  return config.webhooks[0];
};
const injectorPod = (objs) => find(objs, 'Deployment', INJECTOR).spec.template.spec;

// The injector container's args after `injector serve`, as flag -> value
// (every flag of serve takes a value); a flag given twice fails.
function injectionFlags(deployment) {
  const c = byName(deployment.spec.template.spec.containers, 'injector');
  assert.deepEqual(c.command, ['/usr/local/bin/credsync']);
  assert.deepEqual(c.args.slice(0, 2), ['injector', 'serve']);
  const rest = c.args.slice(2);
  assert.equal(rest.length % 2, 0, `flag/value pairs: ${rest.join(' ')}`);
  const flags = {};
  for (let i = 0; i < rest.length; i += 2) {
    assert.match(rest[i], /^--[a-z-]+$/, `a flag at ${i}: ${rest[i]}`);
    assert.equal(typeof rest[i + 1], 'string', `${rest[i]}'s value is a string`);
    assert.ok(!(rest[i] in flags), `${rest[i]} once`);
    flags[rest[i]] = rest[i + 1];
  }
  return flags;
}

// The serving certificate as the API server and the injector see it: the
// webhook's caBundle is one PEM CA certificate; the Secret the injector
// mounts holds a certificate that CA signed, valid for the Service's DNS
// names, with the matching key. Returns the CA, for comparisons.
function assertServingCertificate(objs, { secretName = `${INJECTOR}-tls`, ca: expectedCa } = {}) {
  const bundle = Buffer.from(webhookOf(objs).clientConfig.caBundle, 'base64').toString('utf8');
  assert.match(bundle, /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?$/, 'caBundle is one PEM certificate');
  const ca = new crypto.X509Certificate(bundle);
  assert.ok(ca.ca, 'the caBundle is a CA');
  if (expectedCa) assert.equal(ca.fingerprint256, new crypto.X509Certificate(expectedCa).fingerprint256);
  const secret = find(objs, 'Secret', secretName);
  assert.equal(secret.type, 'kubernetes.io/tls');
  const data = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  assert.deepEqual(Object.keys(data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  assert.equal(data['ca.crt'], bundle, 'the Secret keeps the CA of the caBundle');
  const cert = new crypto.X509Certificate(data['tls.crt']);
  assert.ok(!cert.ca, 'the serving certificate is no CA');
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'the caBundle\'s CA signed the serving certificate');
  assert.ok(cert.checkPrivateKey(crypto.createPrivateKey(data['tls.key'])), 'tls.key is the certificate\'s key');
  const sans = cert.subjectAltName.split(', ').map((n) => n.replace(/^DNS:/, ''));
  const svc = find(objs, 'Service', INJECTOR);
  for (const name of INJECTOR_DNS) {
    assert.ok(sans.includes(name), `${name} is a DNS name of the certificate`);
    assert.equal(cert.checkHost(name), name);
  }
  assert.equal(webhookOf(objs).clientConfig.service.name, svc.metadata.name);
  assert.ok(new Date(cert.validTo) > new Date(Date.now() + 364 * 86400e3), 'valid for a year at least');
  const vol = injectorPod(objs).volumes.find((v) => v.name === 'tls');
  assert.equal(vol.secret.secretName, secretName, 'the injector mounts that Secret');
  return ca;
}

// ---------------------------------------------------------------------------
// lookup: helm template against a stand-in API server

const resource = (name, kind, namespaced = true) => ({ name, singularName: kind.toLowerCase(), namespaced, kind, verbs: ['get', 'list', 'create'] });
const GROUPS = {
  'apps/v1': [resource('deployments', 'Deployment')],
  'policy/v1': [resource('poddisruptionbudgets', 'PodDisruptionBudget')],
  'admissionregistration.k8s.io/v1': [resource('mutatingwebhookconfigurations', 'MutatingWebhookConfiguration', false)],
};
const CORE = ['ConfigMap', 'Pod', 'Secret', 'Service', 'ServiceAccount'].map((k) => resource(`${k.toLowerCase()}s`, k));
// A stand-in API server for `helm template --dry-run=server`, so that the
// chart's lookup finds what a cluster would hold: serves discovery and GET
// of `secret` (in namespace apps); everything else is NotFound. Resolves to
// { kubeconfig, paths requested, close }.
function fakeApiServer(secret) {
  const requested = [];
  const server = http.createServer((req, res) => {
    const url = req.url.split('?')[0];
    requested.push(url);
    const send = (code, body) => res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    if (url === '/version') return send(200, { major: '1', minor: '30', gitVersion: `v${KUBE_VERSION}` });
    if (url === '/api') return send(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (url === '/api/v1') return send(200, { kind: 'APIResourceList', groupVersion: 'v1', resources: CORE });
    if (url === '/apis') {
      return send(200, { kind: 'APIGroupList', apiVersion: 'v1', groups: Object.keys(GROUPS).map((gv) => {
        const [name, version] = gv.split('/');
        return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } };
      }) });
    }
    const group = url.match(/^\/apis\/(.+\/v1)$/)?.[1];
    if (GROUPS[group]) return send(200, { kind: 'APIResourceList', groupVersion: group, resources: GROUPS[group] });
    if (secret && url === `/api/v1/namespaces/apps/secrets/${secret.metadata.name}`) return send(200, secret);
    return send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-lookup-'));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const kubeconfig = path.join(tmp, 'kubeconfig');
    fs.writeFileSync(kubeconfig, YAML.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${server.address().port}` } }],
      users: [{ name: 'fake', user: { token: 'fake' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    }));
    resolve({ kubeconfig, requested, close: () => new Promise((done) => server.close(done)).then(() => fs.rmSync(tmp, { recursive: true, force: true })) });
  }));
}

// helm template --dry-run=server against the stand-in holding `secret`;
// asynchronous, so that this process's server answers while helm runs.
// Resolves to { objs, requested }.
async function renderAgainstCluster(secret, valueFlags) {
  const api = await fakeApiServer(secret);
  try {
    const child = spawn(helmSh, ['template', 'rel', chart, '--namespace', 'apps', '--dry-run=server', '--disable-openapi-validation', ...valueFlags],
                        { cwd: repo, env: { ...process.env, KUBECONFIG: api.kubeconfig } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const status = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(status, 0, stderr);
    return { objs: parseObjects(stdout), requested: api.requested };
  } finally {
    await api.close();
  }
}

// The Secret of a first install, as the cluster returns it.
const installed = (secret) => ({
  ...secret,
  metadata: { ...secret.metadata, labels: { ...secret.metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' },
              annotations: { 'meta.helm.sh/release-name': 'rel', 'meta.helm.sh/release-namespace': 'apps' } },
});

describe('injector (injector.enabled)', () => {
  test('off by default: nothing of the injector is rendered', () => {
    for (const objs of [render(), render({ files: [full] })]) {
      for (const kind of ['MutatingWebhookConfiguration', 'Service', 'PodDisruptionBudget', 'Secret', 'Certificate', 'Issuer']) none(objs, kind);
      assert.deepEqual(objs.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'injector'), []);
    }
  });

  describe('alone (ci/injector-values.yaml): a Helm-generated certificate', () => {
    const objs = renderInjector();

    test('no config.profiles needed: no ConfigMap, no test pod, no sidecar ServiceAccount', () => {
      none(objs, 'ConfigMap');
      none(objs, 'Pod');
      assert.deepEqual(objs.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name), [INJECTOR]);
    });

    test('no RBAC: no Role, ClusterRole or binding; the ServiceAccount mounts no token', () => {
      for (const kind of RBAC_KINDS) none(objs, kind);
      assert.equal(find(objs, 'ServiceAccount', INJECTOR).automountServiceAccountToken, false);
      const pod = injectorPod(objs);
      assert.equal(pod.serviceAccountName, INJECTOR);
      assert.equal(pod.automountServiceAccountToken, false);
    });

    test('the webhook: fails closed, at most 5 s, reinvoked if needed, v1 reviews of created pods at /mutate', () => {
      const config = find(objs, 'MutatingWebhookConfiguration');
      assert.equal(config.metadata.name, 'rel-credsync-injector.credsync.io');
      assert.equal(config.metadata.namespace, undefined, 'cluster-scoped');
      assert.equal(config.metadata.annotations, undefined, 'no cainjector without cert-manager');
      const wh = webhookOf(objs);
      assert.equal(wh.name, 'inject.credsync.io');
      assert.equal(wh.failurePolicy, 'Fail');
      assert.ok(wh.timeoutSeconds >= 1 && wh.timeoutSeconds <= 5, `timeoutSeconds ${wh.timeoutSeconds}`);
      assert.equal(wh.reinvocationPolicy, 'IfNeeded');
      assert.equal(wh.sideEffects, 'None');
      assert.equal(wh.matchPolicy, 'Equivalent');
      assert.deepEqual(wh.admissionReviewVersions, ['v1']);
      assert.deepEqual(wh.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
      assert.deepEqual(wh.clientConfig.service, { name: INJECTOR, namespace: 'apps', path: '/mutate', port: 443 });
    });

    test('selection: opted-in pods of labelled namespaces; never kube-system or the injector\'s own namespace', () => {
      const wh = webhookOf(objs);
      const ns = (name, labels = { 'credsync.io/injection': 'enabled' }) => ({ 'kubernetes.io/metadata.name': name, ...labels });
      assert.ok(selects(wh.namespaceSelector, ns('shop')));
      assert.ok(!selects(wh.namespaceSelector, ns('shop', {})), 'an unlabelled namespace');
      assert.ok(!selects(wh.namespaceSelector, ns('shop', { 'credsync.io/injection': 'disabled' })));
      assert.ok(!selects(wh.namespaceSelector, ns('kube-system')), 'kube-system, even labelled');
      assert.ok(!selects(wh.namespaceSelector, ns('apps')), 'the release\'s namespace, even labelled');
      assert.ok(selects(wh.objectSelector, { 'credsync.io/inject': 'true', app: 'shop' }));
      for (const labels of [{}, { 'credsync.io/inject': 'false' }, { app: 'shop' }]) {
        assert.ok(!selects(wh.objectSelector, labels), `not ${JSON.stringify(labels)}`);
      }
      // The injector's own pods are never sent to it.
      assert.ok(!selects(wh.objectSelector, find(objs, 'Deployment', INJECTOR).spec.template.metadata.labels));
    });

    test('the caBundle\'s CA signed the serving certificate for the Service\'s DNS names', () => {
      assertServingCertificate(objs);
    });

    test('helm template (no cluster to look the Secret up in) generates a new pair each time', () => {
      const again = renderInjector();
      assert.notEqual(webhookOf(again).clientConfig.caBundle, webhookOf(objs).clientConfig.caBundle);
      assertServingCertificate(again);
    });

    test('the Deployment: 2 replicas, spread over nodes, restricted, probes, the Secret read-only', () => {
      const dep = find(objs, 'Deployment', INJECTOR);
      assert.equal(dep.spec.replicas, 2);
      const { metadata, spec: pod } = dep.spec.template;
      assert.ok(selects(dep.spec.selector, metadata.labels));
      assert.equal(metadata.labels['app.kubernetes.io/component'], 'injector');
      assert.deepEqual(pod.topologySpreadConstraints, [{
        maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: dep.spec.selector,
      }]);
      const [anti] = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution;
      assert.equal(anti.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
      assert.deepEqual(anti.podAffinityTerm.labelSelector, dep.spec.selector);
      assert.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      assert.deepEqual(names(pod.containers), ['injector']);
      assert.equal(pod.initContainers, undefined);
      const c = pod.containers[0];
      assert.equal(c.image, 'ghcr.io/credsync/credsync:0.1.0');
      assert.deepEqual(c.securityContext, EXPECTED_CONTAINER_SECURITY);
      assert.deepEqual(Object.fromEntries(c.ports.map((p) => [p.name, p.containerPort])), { https: 8443, probes: 9808 });
      assert.deepEqual(c.startupProbe.httpGet, { path: '/healthz', port: 'probes' });
      assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'probes' });
      assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'probes' });
      assert.deepEqual(c.resources, { requests: { cpu: '20m', memory: '32Mi' }, limits: { memory: '192Mi' } });
      assert.deepEqual(c.volumeMounts, [{ name: 'tls', mountPath: INJECTOR_TLS_DIR, readOnly: true }]);
      assert.deepEqual(pod.volumes, [{ name: 'tls', secret: { secretName: `${INJECTOR}-tls`, defaultMode: 0o440 } }]);
      const flags = injectionFlags(dep);
      assert.equal(flags['--listen'], '0.0.0.0:8443');
      assert.equal(flags['--cert-file'], `${INJECTOR_TLS_DIR}/tls.crt`);
      assert.equal(flags['--key-file'], `${INJECTOR_TLS_DIR}/tls.key`);
      assert.equal(flags['--http-address'], '0.0.0.0:9808');
      assert.equal(flags['--log-level'], 'info');
    });

    test('the Service sends 443 to the https port of the injector\'s pods alone', () => {
      const svc = find(objs, 'Service', INJECTOR);
      assert.deepEqual(svc.spec.ports, [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
      assert.ok(selects({ matchLabels: svc.spec.selector }, find(objs, 'Deployment', INJECTOR).spec.template.metadata.labels));
    });

    test('the PodDisruptionBudget keeps one injector up', () => {
      const pdb = find(objs, 'PodDisruptionBudget', INJECTOR);
      assert.equal(pdb.spec.minAvailable, 1);
      assert.deepEqual(pdb.spec.selector, find(objs, 'Deployment', INJECTOR).spec.selector);
    });

    test('valid Kubernetes objects and label values', async () => {
      await assertModels(objs);
      assertLabelValues(objs);
    });
  });

  // Upgrades keep the generated pair: `helm template --dry-run=server`
  // runs the chart's `lookup` against a cluster, here a stand-in for the
  // API server that answers discovery and holds one Secret (with Helm's
  // ownership metadata, as an installed release's Secret has).
  describe('generated certificate: kept across upgrades (lookup of the existing Secret)', () => {
    async function renderAgainst(secret) {
      const { objs, requested } = await renderAgainstCluster(secret, ['-f', INJECTOR_VALUES]);
      assert.ok(requested.includes(`/api/v1/namespaces/apps/secrets/${INJECTOR}-tls`), 'the chart looked the Secret up');
      return objs;
    }
    const first = renderInjector();

    test('the installed Secret is rendered again unchanged, and the caBundle is its CA', async () => {
      const secret = find(first, 'Secret', `${INJECTOR}-tls`);
      const objs = await renderAgainst(installed(secret));
      assert.deepEqual(find(objs, 'Secret', `${INJECTOR}-tls`).data, secret.data);
      assert.equal(webhookOf(objs).clientConfig.caBundle, secret.data['ca.crt']);
      assertServingCertificate(objs, { ca: Buffer.from(secret.data['ca.crt'], 'base64').toString('utf8') });
    });

    test('no Secret in the cluster, or one without its CA: a new pair', async () => {
      const secret = find(first, 'Secret', `${INJECTOR}-tls`);
      const partial = installed({ ...secret, data: { 'tls.crt': secret.data['tls.crt'], 'tls.key': secret.data['tls.key'] } });
      for (const inCluster of [null, partial]) {
        const objs = await renderAgainst(inCluster);
        assert.notEqual(find(objs, 'Secret', `${INJECTOR}-tls`).data['tls.crt'], secret.data['tls.crt']);
        assertServingCertificate(objs);
      }
    });
  });

  test('the injection flags: each from the chart value it stands for', () => {
    const values = {
      'image.repository': 'registry.example.com/credsync', 'image.tag': '1.2.3', 'image.pullPolicy': 'Always',
      'sidecar.mode': 'classic', 'sidecar.syncOnceTimeout': '2m', 'sidecar.runAsUser': '1000', 'sidecar.runAsGroup': '2000',
      'podSecurityContext.fsGroup': '3000', 'sharedVolume.sizeLimit': '8Mi', 'config.kms.region': 'cn-shanghai',
      'config.control.httpPort': '9818', 'rrsa.oidcProviderArn': 'acs:ram::1:oidc-provider/ack-rrsa-x',
      'rrsa.tokenExpirationSeconds': '7200', 'injector.logLevel': 'debug',
      'localApi.port': '18190', 'localApi.refetchWithin': '1m30s',
    };
    const resources = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } };
    const objs = renderInjector({ set: values, setJson: { 'sidecar.resources': resources } });
    const dep = find(objs, 'Deployment', INJECTOR);
    assert.equal(byName(dep.spec.template.spec.containers, 'injector').image, 'registry.example.com/credsync:1.2.3');
    assert.deepEqual(injectionFlags(dep), {
      '--listen': '0.0.0.0:8443', '--cert-file': `${INJECTOR_TLS_DIR}/tls.crt`, '--key-file': `${INJECTOR_TLS_DIR}/tls.key`,
      '--http-address': '0.0.0.0:9808', '--log-level': 'debug',
      '--image': 'registry.example.com/credsync:1.2.3', '--image-pull-policy': 'Always',
      '--default-mode': 'classic', '--native-sidecars': 'true',
      '--kms-region': 'cn-shanghai', '--oidc-provider-arn': 'acs:ram::1:oidc-provider/ack-rrsa-x',
      '--token-expiration-seconds': '7200', '--run-as-user': '1000', '--run-as-group': '2000', '--fs-group': '3000',
      '--cpu-request': '50m', '--memory-request': '64Mi', '--cpu-limit': '1', '--memory-limit': '256Mi',
      '--sync-once-timeout': '2m', '--sidecar-http-port': '9818', '--volume-size-limit': '8Mi',
      '--local-api-port': '18190', '--local-api-refetch-within': '90s',
    });
  });

  // The flags are the contract of sidecar/injector: InjectionSettings and
  // ServeOptions name each one in a comment. Every flag the chart passes
  // must be one of them, and with every value set the chart passes every
  // injection flag.
  test('the built credsync takes every flag the chart passes, and the chart passes every injection flag', () => {
    // The binary is the judge: `injector review` takes exactly the injection
    // flags, and answers a review with them; serve's own flags are the rest.
    const SERVE_ONLY = ['--listen', '--cert-file', '--key-file', '--http-address', '--log-level', '--cert-check-interval'];
    const help = spawnSync(credsyncBin, ['injector', 'review', '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    const injection = new Set([...help.stdout.matchAll(/(?:^|\s|,\s)(--[a-z-]+)/g)].map((m) => m[1]).filter((f) => f !== '--file' && f !== '--help'));
    assert.ok(injection.size >= 15, `review --help names the injection flags: ${[...injection]}`);
    const objs = renderInjector({ setJson: { 'sidecar.resources': { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '1', memory: '128Mi' } } } });
    const flags = injectionFlags(find(objs, 'Deployment', INJECTOR));
    assert.deepEqual(Object.keys(flags).filter((f) => !injection.has(f) && !SERVE_ONLY.includes(f)), [], 'flags credsync does not know');
    assert.deepEqual([...injection].filter((f) => !(f in flags)), [], 'injection flags the chart does not pass');
    const review = path.join(repo, 'tests', 'unit', 'injector', 'fixtures', 'deployment.review.json');
    const args = Object.entries(flags).filter(([f]) => !SERVE_ONLY.includes(f)).flat();
    const r = spawnSync(credsyncBin, ['injector', 'review', ...args, '--file', review], { encoding: 'utf8' });
    assert.equal(r.status, 0, `credsync injector review ${args.join(' ')}: ${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).response.allowed, true, r.stdout);
  });

  test('the defaults: the chart\'s image, the cluster\'s mode, no region or provider unless set', () => {
    const flags = injectionFlags(find(renderInjector({ files: [], set: { 'injector.enabled': 'true', 'deployment.enabled': 'false' } }), 'Deployment', INJECTOR));
    assert.equal(flags['--image'], 'ghcr.io/credsync/credsync:0.1.0');
    assert.equal(flags['--default-mode'], 'native');
    assert.equal(flags['--native-sidecars'], 'true');
    assert.equal(flags['--kms-region'], undefined);
    assert.equal(flags['--oidc-provider-arn'], undefined);
    assert.equal(flags['--cpu-limit'], undefined, 'sidecar.resources sets no CPU limit');
    assert.deepEqual([flags['--cpu-request'], flags['--memory-request'], flags['--memory-limit']], ['10m', '32Mi', '128Mi']);
  });

  test('sidecar.mode auto follows the cluster: classic without native sidecars; native there is refused', () => {
    const flags = injectionFlags(find(renderInjector({ kubeVersion: '1.28.0' }), 'Deployment', INJECTOR));
    assert.equal(flags['--default-mode'], 'classic');
    assert.equal(flags['--native-sidecars'], 'false');
    assert.match(renderFails({ files: [INJECTOR_VALUES], kubeVersion: '1.28.0', set: { 'sidecar.mode': 'native' } }),
      /sidecar\.mode=native needs native sidecars/);
  });

  test('a token lifetime the injector refuses fails the render with one line', () => {
    assert.match(renderFails({ files: [INJECTOR_VALUES], set: { 'rrsa.tokenExpirationSeconds': '90000' } }),
      /rrsa\.tokenExpirationSeconds 90000: the injector takes 600 to 86400/);
  });

  test('injector.image: its own repository, tag or digest; else the chart\'s, digest included', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const image = (set) => byName(injectorPod(renderInjector({ set })).containers, 'injector').image;
    assert.equal(image({ 'image.digest': digest }), `ghcr.io/credsync/credsync:0.1.0@${digest}`);
    assert.equal(image({ 'injector.image.tag': 'edge', 'image.digest': digest }), 'ghcr.io/credsync/credsync:edge');
    assert.equal(image({ 'injector.image.repository': 'r.example.com/i', 'injector.image.digest': digest }), `r.example.com/i:0.1.0@${digest}`);
    // The sidecar it injects is always the chart's image.
    assert.equal(injectionFlags(find(renderInjector({ set: { 'injector.image.tag': 'edge' } }), 'Deployment', INJECTOR))['--image'], 'ghcr.io/credsync/credsync:0.1.0');
  });

  test('one replica: no PodDisruptionBudget (minAvailable 1 would block every drain)', () => {
    const objs = renderInjector({ set: { 'injector.replicas': '1' } });
    assert.equal(find(objs, 'Deployment', INJECTOR).spec.replicas, 1);
    none(objs, 'PodDisruptionBudget');
    assert.equal(find(renderInjector({ set: { 'injector.replicas': '3' } }), 'PodDisruptionBudget').spec.minAvailable, 1);
  });

  test('the webhook settings and selectors are values; the two namespaces stay excluded', () => {
    const objs = renderInjector({
      set: { 'injector.webhook.failurePolicy': 'Ignore', 'injector.webhook.timeoutSeconds': '3', 'injector.webhook.reinvocationPolicy': 'Never' },
      setJson: {
        // null drops the default's matchLabels (Helm merges maps of values).
        'injector.webhook.namespaceSelector': { matchLabels: null, matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }] },
        'injector.webhook.objectSelector': { matchLabels: null, matchExpressions: [{ key: 'credsync.io/inject', operator: 'NotIn', values: ['false'] }] },
      },
    });
    const wh = webhookOf(objs);
    assert.deepEqual([wh.failurePolicy, wh.timeoutSeconds, wh.reinvocationPolicy], ['Ignore', 3, 'Never']);
    assert.deepEqual(wh.namespaceSelector, { matchExpressions: [
      { key: 'team', operator: 'In', values: ['a', 'b'] },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'apps'] },
    ] });
    assert.ok(selects(wh.objectSelector, {}), 'every pod, annotation-only opt-in');
    // In kube-system itself: one exclusion, no duplicate value.
    const r = helm(['template', 'rel', chart, '--namespace', 'kube-system', '--kube-version', KUBE_VERSION, '-f', INJECTOR_VALUES]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(find(parseObjects(r.stdout), 'MutatingWebhookConfiguration').webhooks[0].namespaceSelector.matchExpressions,
      [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }]);
  });

  describe('cert-manager (injector.certificate.certManager.enabled)', () => {
    const objs = renderInjector({ set: { 'injector.certificate.certManager.enabled': 'true' } });

    test('a CA chain of the release\'s own: selfSigned Issuer, CA Certificate, CA Issuer, serving Certificate', () => {
      assert.deepEqual(objs.filter((o) => o.kind === 'Issuer').map((o) => o.metadata.name).sort(), [`${INJECTOR}-ca`, `${INJECTOR}-selfsigned`]);
      const selfSigned = find(objs, 'Issuer', `${INJECTOR}-selfsigned`);
      assert.deepEqual(selfSigned.spec, { selfSigned: {} });
      const caCert = find(objs, 'Certificate', `${INJECTOR}-ca`);
      assert.equal(caCert.spec.isCA, true);
      assert.deepEqual(caCert.spec.issuerRef, { name: `${INJECTOR}-selfsigned`, kind: 'Issuer', group: 'cert-manager.io' });
      assert.deepEqual(find(objs, 'Issuer', `${INJECTOR}-ca`).spec, { ca: { secretName: caCert.spec.secretName } });
      const serving = find(objs, 'Certificate', INJECTOR);
      assert.deepEqual(serving.spec.issuerRef, { name: `${INJECTOR}-ca`, kind: 'Issuer', group: 'cert-manager.io' });
      assert.deepEqual(serving.spec.dnsNames, INJECTOR_DNS);
      assert.equal(serving.spec.secretName, `${INJECTOR}-tls`);
      assert.deepEqual([serving.spec.duration, serving.spec.renewBefore], ['2160h', '360h']);
      assert.equal(injectorPod(objs).volumes[0].secret.secretName, serving.spec.secretName, 'the injector mounts what cert-manager writes');
    });

    test('no Secret of Helm\'s; cainjector fills the caBundle from the serving Certificate', () => {
      none(objs, 'Secret');
      const config = find(objs, 'MutatingWebhookConfiguration');
      assert.deepEqual(config.metadata.annotations, { 'cert-manager.io/inject-ca-from': `apps/${INJECTOR}` });
      assert.equal(webhookOf(objs).clientConfig.caBundle, undefined);
      for (const kind of RBAC_KINDS) none(objs, kind);
    });

    test('valid objects (cert-manager\'s by structure)', async () => {
      await assertModels(objs);
      assertLabelValues(objs);
    });

    test('issuerRef: your Issuer or ClusterIssuer signs the serving Certificate; no CA chain rendered', async () => {
      const own = renderInjector({ set: { 'injector.certificate.certManager.enabled': 'true' },
                                   setJson: { 'injector.certificate.certManager.issuerRef': { name: 'platform-ca', kind: 'ClusterIssuer' } } });
      none(own, 'Issuer');
      assert.deepEqual(own.filter((o) => o.kind === 'Certificate').map((o) => o.metadata.name), [INJECTOR]);
      assert.deepEqual(find(own, 'Certificate').spec.issuerRef, { name: 'platform-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
      assert.equal(find(own, 'MutatingWebhookConfiguration').metadata.annotations['cert-manager.io/inject-ca-from'], `apps/${INJECTOR}`);
      await assertModels(own);
    });
  });

  describe('injector.certificate.existingSecret (a kubernetes.io/tls Secret you manage)', () => {
    // A CA and serving certificate as the user would make them (here with
    // openssl), for the Service's DNS names.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-injector-tls-'));
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const openssl = (...args) => {
      const r = spawnSync('openssl', args, { cwd: tmp, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    };
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=my-ca');
    const caPem = fs.readFileSync(path.join(tmp, 'ca.crt'), 'utf8');

    test('mounted by the injector; the caBundle is the CA given, as PEM', async () => {
      const objs = renderInjector({ set: { 'injector.certificate.existingSecret': 'my-injector-tls' },
                                    setString: { 'injector.certificate.caBundle': caPem } });
      none(objs, 'Secret');
      none(objs, 'Certificate');
      assert.equal(injectorPod(objs).volumes[0].secret.secretName, 'my-injector-tls');
      assert.equal(Buffer.from(webhookOf(objs).clientConfig.caBundle, 'base64').toString('utf8'), caPem);
      assert.equal(find(objs, 'MutatingWebhookConfiguration').metadata.annotations, undefined);
      await assertModels(objs);
    });

    for (const [what, opts, pattern] of [
      ['without caBundle', { set: { 'injector.certificate.existingSecret': 'my-injector-tls' } },
        /injector\.certificate\.caBundle is required with existingSecret my-injector-tls/],
      ['with cert-manager too', { set: { 'injector.certificate.existingSecret': 'x', 'injector.certificate.certManager.enabled': 'true' } },
        /injector\.certificate: set certManager\.enabled or existingSecret, not both/],
      ['a caBundle without existingSecret', { setString: { 'injector.certificate.caBundle': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' } },
        /injector\.certificate\.caBundle is used only with existingSecret/],
      ['an issuerRef without cert-manager', { setJson: { 'injector.certificate.certManager.issuerRef': { name: 'x' } } },
        /certManager\.issuerRef is set but certManager\.enabled is false/],
    ]) {
      test(`refused ${what}, with one line`, () => {
        assert.match(renderFails({ files: [INJECTOR_VALUES], ...opts }), pattern);
      });
    }
  });

  describe('beside the chart\'s own sidecar Deployment', () => {
    const objs = render({ files: [minimal, INJECTOR_VALUES], set: { 'deployment.enabled': 'true', 'metrics.podMonitor.enabled': 'true' } });

    test('the sidecar keeps its ConfigMap, ServiceAccount and test pod; no selector crosses', async () => {
      find(objs, 'ConfigMap');
      find(objs, 'Pod');
      assert.deepEqual(objs.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name).sort(), ['rel-credsync', INJECTOR]);
      const sidecar = find(objs, 'Deployment', 'rel-credsync');
      const injector = find(objs, 'Deployment', INJECTOR);
      assert.ok(!selects(sidecar.spec.selector, injector.spec.template.metadata.labels), 'the sidecar Deployment does not select injector pods');
      assert.ok(!selects(injector.spec.selector, sidecar.spec.template.metadata.labels), 'nor the reverse');
      assert.ok(!selects({ matchLabels: find(objs, 'Service').spec.selector }, sidecar.spec.template.metadata.labels));
      assertValidates(objs);
      await assertModels(objs);
    });

    test('two PodMonitors: the sidecar\'s and the injector\'s, each on its own pods', () => {
      assert.deepEqual(objs.filter((o) => o.kind === 'PodMonitor').map((o) => o.metadata.name).sort(), ['rel-credsync', INJECTOR]);
      for (const pm of objs.filter((o) => o.kind === 'PodMonitor')) assertPodMonitor(pm, objs);
    });
  });

  test('injector only with metrics: one PodMonitor, the injector\'s (no podSelector asked for)', async () => {
    const objs = renderInjector({ set: { 'metrics.podMonitor.enabled': 'true' } });
    assert.deepEqual(objs.filter((o) => o.kind === 'PodMonitor').map((o) => o.metadata.name), [INJECTOR]);
    await assertModels(objs);
  });

  test('deployment.enabled=false with config.profiles (a parent chart\'s pods): the ConfigMap stays', () => {
    const objs = render({ files: [minimal, INJECTOR_VALUES] });
    find(objs, 'ConfigMap');
    find(objs, 'ServiceAccount', 'rel-credsync');
    assertValidates(objs);
  });

  test('NOTES: the injector, the certificate source and how to opt a pod in; nothing of a sidecar of its own', () => {
    const r = helm(['install', 'rel', chart, '--dry-run=client', '--namespace', 'apps', '-f', INJECTOR_VALUES]);
    assert.equal(r.status, 0, r.stderr);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    assert.match(notes, /Injector: 2 replica\(s\) of deployment\/rel-credsync-injector, webhook rel-credsync-injector\.credsync\.io\n\(failurePolicy Fail, certificate: generated\)/);
    assert.match(notes, /kubectl label namespace <app namespace> credsync\.io\/injection=enabled/);
    assert.match(notes, /credsync\.io\/inject: "true"/);
    assert.doesNotMatch(notes, /RRSA:|deployment\.enabled is false|helm test/);
  });

  describe('values.schema.json refuses bad injector values', () => {
    for (const [what, opts, pattern] of [
      ['timeoutSeconds above 5', { set: { 'injector.webhook.timeoutSeconds': '10' } }, /\/injector\/webhook\/timeoutSeconds/],
      ['timeoutSeconds 0', { set: { 'injector.webhook.timeoutSeconds': '0' } }, /\/injector\/webhook\/timeoutSeconds/],
      ['an unknown failurePolicy', { set: { 'injector.webhook.failurePolicy': 'Retry' } }, /\/injector\/webhook\/failurePolicy/],
      ['an unknown reinvocationPolicy', { set: { 'injector.webhook.reinvocationPolicy': 'Always' } }, /\/injector\/webhook\/reinvocationPolicy/],
      ['an unknown injector key', { set: { 'injector.replica': '2' } }, /additional properties 'replica'/],
      ['an unknown selector key', { setJson: { 'injector.webhook.objectSelector': { labels: { a: 'b' } } } }, /additional properties 'labels'/],
      ['a bad selector operator', { setJson: { 'injector.webhook.namespaceSelector': { matchExpressions: [{ key: 'a', operator: 'Equals' }] } } }, /\/injector\/webhook\/namespaceSelector/],
      ['zero replicas', { set: { 'injector.replicas': '0' } }, /\/injector\/replicas/],
      ['a caBundle that is not PEM', { setString: { 'injector.certificate.caBundle': 'not a certificate' } }, /\/injector\/certificate\/caBundle/],
      ['an issuerRef of another kind', { setJson: { 'injector.certificate.certManager.issuerRef': { name: 'x', kind: 'Vault' } } }, /\/injector\/certificate\/certManager\/issuerRef/],
      ['a renewBefore without a unit', { set: { 'injector.certificate.certManager.renewBefore': '360' } }, /\/injector\/certificate\/certManager\/renewBefore/],
      ['a bad log level', { set: { 'injector.logLevel': 'trace' } }, /\/injector\/logLevel/],
    ]) {
      test(what, () => {
        const err = renderFails({ files: [INJECTOR_VALUES], ...opts });
        assert.match(err, /values don't meet the specifications of the schema/);
        assert.match(err, pattern);
      });
    }
  });
});

// Profiles credsync validate refuses (sidecar/config/profiles_section.cc)
// that JSON Schema can also say: the schema must refuse each, so a bad
// profile fails `helm install`, not the pod at start (a crash loop).
const PROFILE_RULES = [
  ['a generic profile as the default', { name: 'db', secretName: 'b', kind: 'generic', default: true }],
  ['a generic profile named default', { name: 'default', secretName: 'b', kind: 'generic' }],
  ['file on a ram_credentials profile', { name: 'a', secretName: 'b', file: 'x' }],
  ['format on a profile without kind', { name: 'a', secretName: 'b', format: 'raw' }],
  ['filePrefix on a raw generic profile', { name: 'db', secretName: 'b', kind: 'generic', filePrefix: 'db.' }],
  ['file on a json_keys profile', { name: 'db', secretName: 'b', kind: 'generic', format: 'json_keys', file: 'x' }],
];

describe('values.schema.json rejects bad values', () => {
  const cases = [
    ['an unknown top-level key', { set: { replicas: '2' } }, /additional properties 'replicas' not allowed/],
    ['an unknown nested key', { set: { 'config.kms.regionId': 'cn-hangzhou' } }, /\/config\/kms.*additional properties 'regionId'/s],
    ['an unknown key deep down', { set: { 'config.control.tcp.address': '127.0.0.1:9901' } }, /additional properties 'address'/],
    ['a snake_case profile key', { setJson: { 'config.profiles': [{ name: 'a', secret_name: 'b' }] } }, /additional properties 'secret_name'/],
    ['a wrong type (string for integer)', { set: { 'deployment.replicas': 'two' } }, /\/deployment\/replicas/],
    ['a wrong type (string for boolean)', { setString: { 'rrsa.projectToken': 'yes' } }, /\/rrsa\/projectToken/],
    ['a wrong type (object for string)', { setJson: { 'config.logLevel': { level: 'info' } } }, /\/config\/logLevel/],
    ['a bad sidecar.mode', { set: { 'sidecar.mode': 'sidecar' } }, /\/sidecar\/mode.*'auto', 'native', 'classic'/s],
    ['a bad log level', { set: { 'config.logLevel': 'verbose' } }, /\/config\/logLevel/],
    ['a bad signature', { set: { 'config.kms.signature': 'hmac-sha256' } }, /\/config\/kms\/signature/],
    ['a bad version stage', { setJson: { 'config.profiles': [{ name: 'a', secretName: 'b', versionStage: 'current' }] } }, /versionStage/],
    ['a profile name with a dot', { setJson: { 'config.profiles': [{ name: 'a.b', secretName: 'b' }] } }, /\/config\/profiles\/0\/name/],
    ['an empty profile name', { setJson: { 'config.profiles': [{ name: '', secretName: 'b' }] } }, /\/config\/profiles\/0\/name/],
    ['a 65-character profile name', { setJson: { 'config.profiles': [{ name: 'p'.repeat(65), secretName: 'b' }] } }, /\/config\/profiles\/0\/name/],
    ['an unknown profile kind', { setJson: { 'config.profiles': [{ name: 'a', secretName: 'b', kind: 'kv' }] } }, /\/config\/profiles\/0\/kind/],
    ['a generic file with a slash', { setJson: { 'config.profiles': [{ name: 'a', secretName: 'b', kind: 'generic', file: '../x' }] } }, /\/config\/profiles\/0\/file/],
    ['a secret name with a space', { setJson: { 'config.profiles': [{ name: 'a', secretName: 'b c' }] } }, /secretName/],
    // What credsync validate refuses about profiles, refused before render.
    ...PROFILE_RULES.map(([what, profile]) => [what, { setJson: { 'config.profiles': [profile] } }, /\/config\/profiles\/0/]),
    ['a duration without a unit', { set: { 'config.refresh.interval': '3600' } }, /\/config\/refresh\/interval/],
    ['a malformed duration', { set: { 'config.refresh.startupJitter': '10 seconds' } }, /\/config\/refresh\/startupJitter/],
    ['a port above 65535', { set: { 'config.control.tcp.port': '70000' } }, /\/config\/control\/tcp\/port/],
    ['port 0', { set: { 'config.control.httpPort': '0' } }, /\/config\/control\/httpPort/],
    ['jitter above 0.5', { set: { 'config.refresh.jitter': '0.9' } }, /\/config\/refresh\/jitter/],
    ['a group-writable file mode', { set: { 'config.output.fileMode': '0660' } }, /\/config\/output\/fileMode/],
    ['a malformed role ARN', { set: { 'rrsa.roleArn': 'arn:aws:iam::1:role/x' } }, /\/rrsa\/roleArn/],
    ['an endpoint with a path', { setJson: { 'config.kms.endpoints': ['kms.cn-hangzhou.aliyuncs.com/path'] } }, /\/config\/kms\/endpoints\/0/],
    ['a CA bundle that is not PEM', { setString: { 'config.tls.caBundle': 'not a certificate' } }, /\/config\/tls\/caBundle/],
    ['fsGroup 0 (root)', { set: { 'podSecurityContext.fsGroup': '0' } }, /\/podSecurityContext\/fsGroup/],
    ['a token lifetime under 10 minutes', { set: { 'rrsa.tokenExpirationSeconds': '300' } }, /\/rrsa\/tokenExpirationSeconds/],
    ['an example app interval above an hour (credsync check --every)', { set: { 'app.intervalSeconds': '3601' } }, /\/app\/intervalSeconds/],
    ['local API port 0', { set: { 'localApi.port': '0' } }, /\/localApi\/port/],
    ['a local API refetchWithin with a fraction', { set: { 'localApi.refetchWithin': '60.5s' } }, /\/localApi\/refetchWithin/],
    ['an empty path secret key', { setString: { 'localApi.pathSecret.key': '' } }, /\/localApi\/pathSecret\/key/],
    ['an existing path Secret that is no Secret name', { set: { 'localApi.pathSecret.existingSecret': 'My_Secret' } }, /\/localApi\/pathSecret\/existingSecret/],
    ['a string for app.credentialsUri', { setString: { 'app.credentialsUri': 'yes' } }, /\/app\/credentialsUri/],
  ];
  for (const [what, opts, pattern] of cases) {
    test(what, () => {
      const err = renderFails(opts);
      assert.match(err, /values don't meet the specifications of the schema/);
      assert.match(err, pattern);
    });
  }

  // The other half of PROFILE_RULES: rendered without the schema, each is
  // a config credsync itself refuses, so the schema refuses nothing valid.
  for (const [what, profile] of PROFILE_RULES) {
    test(`credsync validate refuses it too: ${what}`, () => {
      const r = helm(['template', 'credsync', chart, '--skip-schema-validation',
                      ...valueArgs({ setJson: { 'config.profiles': [profile] } })]);
      assert.equal(r.status, 0, r.stderr);
      const objs = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS()).filter(Boolean);
      const v = runValidate(objs);
      assert.equal(v.status, 2, `credsync validate accepted ${JSON.stringify(profile)}: ${v.stdout}`);
      assert.match(v.stderr, /^credsync: profiles\[0\]\./);
    });
  }

  test('every value in values.yaml is described by the schema, and the reverse', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(chart, 'values.schema.json'), 'utf8'));
    const values = YAML.parse(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
    const resolve = (s) => (s.$ref ? schema.definitions[s.$ref.split('/').pop()] : s);
    const walk = (v, s, where) => {
      s = resolve(s);
      if (s.type !== 'object' || !s.properties) return;
      assert.equal(s.additionalProperties, false, `${where || '(top)'} forbids unknown keys`);
      // An empty map ({} in values.yaml: affinity, annotations) is a free slot.
      const empty = Object.keys(v ?? {}).length === 0;
      for (const key of Object.keys(s.properties)) {
        if (key === 'global' || empty) continue;
        assert.ok(v && key in v, `schema key ${where}${key} is in values.yaml`);
      }
      for (const [key, child] of Object.entries(v ?? {})) {
        assert.ok(s.properties[key], `values.yaml key ${where}${key} is in the schema`);
        if (child && typeof child === 'object' && !Array.isArray(child)) walk(child, s.properties[key], `${where}${key}.`);
      }
    };
    walk(values, schema, '');
  });

  // docs/install.md's Values table has a row for every documented value
  // (a key with a "# --" comment, as the chart README's table), and names
  // nothing else but the fields of a documented list's items (key[].field).
  test('docs/install.md\'s values table follows values.yaml', () => {
    const documented = documentedValues();
    const install = fs.readFileSync(path.join(repo, 'docs', 'install.md'), 'utf8');
    const rows = tableRows(markdownSection(install, '## Values'))
      .flatMap(([cell]) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]));
    assert.deepEqual(documented.filter((k) => !rows.includes(k)), [], 'values without a row in docs/install.md');
    const extra = rows.filter((k) => !documented.includes(k) && !documented.includes(k.split('[]')[0]));
    assert.deepEqual(extra, [], 'rows of docs/install.md that are no value');
  });

  test('every value in values.yaml has a comment', () => {
    const doc = YAML.parseDocument(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
    const missing = [];
    // A key with a "# --" comment documents everything under it (resources,
    // probes); any other map (image, config) needs one on each key inside.
    // The `yaml` parser hangs the comment of a map's first key on the map.
    const visit = (map, where) => {
      map.items.forEach((pair, index) => {
        const key = `${where}${pair.key.value}`;
        const comment = pair.key.commentBefore || (index === 0 ? map.commentBefore : '') || '';
        const documented = /(^|\n) *-- \S/.test(comment); // helm-docs' "# -- text" marker
        if (documented) return;
        if (YAML.isMap(pair.value) && pair.value.items.length > 0) visit(pair.value, `${key}.`);
        else missing.push(key);
      });
    };
    visit(doc.contents, '');
    assert.deepEqual(missing, [], 'values without a comment');
  });
});

describe('pod-level settings: apps that run as root, fsGroupChangePolicy', () => {
  test('the app\'s own pod securityContext survives credsync.podSettings, runAsUser 0 included', () => {
    const r = renderParent(['--set', 'podSecurityContext.runAsUser=0', '--set', 'podSecurityContext.supplementalGroups={4000}',
                            '--set', 'podSecurityContext.sysctls[0].name=net.ipv4.ip_unprivileged_port_start',
                            '--set-string', 'podSecurityContext.sysctls[0].value=0']);
    assert.equal(r.status, 0, r.stderr);
    const pod = find(parseObjects(r.stdout), 'Deployment', 'rel-myapp').spec.template.spec;
    assert.deepEqual(pod.securityContext, {
      runAsUser: 0, supplementalGroups: [4000], fsGroup: 65532,
      sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
    });
    assert.equal(pod.serviceAccountName, 'rel-credsync');
    // credsync's containers stay non-root whatever the pod says.
    for (const c of [...pod.initContainers, ...pod.containers].filter((x) => x.name.startsWith('credsync'))) {
      assert.deepEqual(c.securityContext, EXPECTED_CONTAINER_SECURITY, c.name);
    }
  });

  test('the app\'s own ServiceAccount, with serviceAccount.create=false', () => {
    const r = renderParent(['--set', 'credsync.serviceAccount.create=false', '--set', 'credsync.serviceAccount.name=myapp']);
    assert.equal(r.status, 0, r.stderr);
    const objs = parseObjects(r.stdout);
    assert.equal(find(objs, 'Deployment', 'rel-myapp').spec.template.spec.serviceAccountName, 'myapp');
    assert.equal(objs.find((o) => o.kind === 'ServiceAccount'), undefined);
  });

  test('the same fsGroup is fine; another one fails the render with one line', () => {
    assert.equal(renderParent(['--set', 'podSecurityContext.fsGroup=65532']).status, 0);
    const r = renderParent(['--set', 'podSecurityContext.fsGroup=1000']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /the pod's fsGroup 1000 is not credsync's podSecurityContext\.fsGroup 65532: set credsync's podSecurityContext\.fsGroup to 1000/);
    const moved = renderParent(['--set', 'podSecurityContext.fsGroup=1000', '--set', 'credsync.podSecurityContext.fsGroup=1000']);
    assert.equal(moved.status, 0, moved.stderr);
    const objs = parseObjects(moved.stdout);
    assert.equal(find(objs, 'Deployment', 'rel-myapp').spec.template.spec.securityContext.fsGroup, 1000);
    assert.equal(configOf(objs).output.group, 1000);
  });

  test('fsGroupChangePolicy reaches the pod, the app\'s own winning', () => {
    const own = deploymentPod(render({ set: { 'podSecurityContext.fsGroupChangePolicy': 'OnRootMismatch' } }));
    assert.deepEqual(own.securityContext, { fsGroup: 65532, fsGroupChangePolicy: 'OnRootMismatch' });
    const r = renderParent(['--set', 'credsync.podSecurityContext.fsGroupChangePolicy=OnRootMismatch',
                            '--set', 'podSecurityContext.fsGroupChangePolicy=Always']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(find(parseObjects(r.stdout), 'Deployment', 'rel-myapp').spec.template.spec.securityContext.fsGroupChangePolicy, 'Always');
  });

  test('the schema refuses another fsGroupChangePolicy', () => {
    assert.match(renderFails({ set: { 'podSecurityContext.fsGroupChangePolicy': 'Sometimes' } }), /fsGroupChangePolicy/);
  });
});

describe('other charts include the named templates', () => {
  test('a parent chart adds the sidecar from .Subcharts.credsync (docs/install.md)', async () => {
    for (const mode of ['native', 'classic']) {
      const r = renderParent(['--set', `credsync.sidecar.mode=${mode}`]);
      assert.equal(r.status, 0, r.stderr);
      const objs = parseObjects(r.stdout);
      assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'ServiceAccount']);
      const dep = find(objs, 'Deployment', 'rel-myapp');
      const pod = dep.spec.template.spec;
      assert.equal(pod.serviceAccountName, 'rel-credsync');
      if (mode === 'native') {
        assert.deepEqual(names(pod.initContainers), ['credsync', 'migrate']);
        assertCredsyncContainer(pod.initContainers[0], { native: true });
        assert.deepEqual(names(pod.containers), ['web']);
      } else {
        assert.deepEqual(names(pod.initContainers), ['credsync-init', 'migrate']);
        assert.deepEqual(names(pod.containers), ['credsync', 'web']);
        assertCredsyncContainer(pod.containers[0], { native: false });
      }
      const web = byName(pod.containers, 'web');
      assert.equal(envMap(web).ALIBABA_CLOUD_CREDENTIALS_FILE, `${OUTPUT_DIR}/credentials.ini`);
      assert.equal(envMap(web).PORT, '8080');
      assert.deepEqual(names(pod.volumes), ['credsync', 'credsync-config', 'credsync-rrsa-token', 'cache']);
      assertVolumes(pod);
      assertPodSecurity(pod);
      assert.match(dep.spec.template.metadata.annotations['checksum/credsync-config'], /^[0-9a-f]{64}$/);
      assertValidates(objs);
      await assertModels(objs);
    }
  });
});

// The chart's README: hand-written prose around two blocks that
// scripts/chart-readme.mjs generates from Chart.yaml and values.yaml's
// "# --" comments. `helm show readme` and chart repositories show it
// outside this repository, so every link must be absolute.
describe('charts/credsync/README.md (helm show readme)', () => {
  const readmeScript = path.join(repo, 'scripts', 'chart-readme.mjs');
  const readmeText = () => fs.readFileSync(path.join(chart, 'README.md'), 'utf8');
  const runScript = (args) => spawnSync(process.execPath, [readmeScript, ...args], { encoding: 'utf8', cwd: repo });
  // The values table's rows as [key, type, default, description].
  const valueRows = (text) => tableRows(text.slice(text.indexOf('<!-- BEGIN chart-readme values -->')))
    .map(([key, type, def, description]) => [key.replace(/`/g, ''), type, def.replace(/^`|`$/g, ''), description]);

  test('the generated parts are current (chart-readme.mjs --check)', () => {
    const r = runScript(['--check']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('--check fails once values.yaml changes, and a rewrite makes it current', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-readme-'));
    try {
      for (const f of ['Chart.yaml', 'values.yaml', 'values.schema.json', 'README.md']) fs.copyFileSync(path.join(chart, f), path.join(tmp, f));
      const values = path.join(tmp, 'values.yaml');
      fs.writeFileSync(values, fs.readFileSync(values, 'utf8')
        .replace('# -- Image pull policy of the credsync containers.', '# -- Pull policy, changed by the test.')
        .replace('  pullPolicy: IfNotPresent\n', '  pullPolicy: Always\n'));
      let r = runScript(['--check', '--chart', tmp]);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /README\.md is stale .*run node scripts\/chart-readme\.mjs/);
      r = runScript(['--chart', tmp]);
      assert.equal(r.status, 0, r.stderr);
      const row = valueRows(fs.readFileSync(path.join(tmp, 'README.md'), 'utf8')).find(([k]) => k === 'image.pullPolicy');
      assert.deepEqual(row, ['image.pullPolicy', 'string', '"Always"', 'Pull policy, changed by the test.']);
      assert.equal(runScript(['--check', '--chart', tmp]).status, 0);
      // A value without a "# --" comment has no description to show.
      fs.appendFileSync(values, 'undocumented: 1\n');
      r = runScript(['--check', '--chart', tmp]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /undocumented has no "# --" comment/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('one row per documented value of values.yaml, in order, with its type and default', () => {
    const rows = valueRows(readmeText());
    assert.deepEqual(rows.map(([k]) => k), documentedValues());
    const values = YAML.parse(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
    const at = (key) => key.split('.').reduce((v, k) => v[k], values);
    for (const [key, type, def, description] of rows) {
      assert.deepEqual(JSON.parse(def.replace(/\\\|/g, '|')), at(key), `default of ${key}`);
      assert.ok(['string', 'int', 'float', 'bool', 'list', 'object'].includes(type), `type of ${key}`);
      assert.ok(description.length > 5, `description of ${key}`);
    }
    const byKey = Object.fromEntries(rows.map(([k, ...rest]) => [k, rest]));
    assert.deepEqual(byKey['config.identity.imdsv1Fallback'].slice(0, 2), ['bool', 'null'], 'a null takes its type from the schema');
    assert.deepEqual(byKey['config.refresh.jitter'].slice(0, 2), ['float', '0.1']);
    assert.deepEqual(byKey['sidecar.resources'].slice(0, 1), ['object']);
    assert.deepEqual(byKey['metrics.prometheusRule.for'].slice(0, 2), ['string', '"10m"']);
  });

  test('the version line follows Chart.yaml', () => {
    const meta = YAML.parse(fs.readFileSync(path.join(chart, 'Chart.yaml'), 'utf8'));
    assert.ok(readmeText().includes(`**Chart version** ${meta.version} · **App version** ${meta.appVersion} · **Kubernetes** \`${meta.kubeVersion}\``));
  });

  test('helm show readme prints it', () => {
    const r = helm(['show', 'readme', chart]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trimEnd(), readmeText().trimEnd());
  });

  test('it stands alone: every link is absolute, under the project home, to a file and heading that exist', () => {
    const text = readmeText();
    const targets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    assert.ok(targets.length > 5, 'the README links to the docs');
    // A URL outside code spans and links would be autolinked.
    const prose = text.replace(/```[^]*?```/g, '').replace(/`[^`]*`/g, '').replace(/\]\([^)]*\)/g, ']');
    const bare = [...prose.matchAll(/https?:\/\/[^\s)|]+/g)].map((m) => m[0]);
    for (const url of [...targets, ...bare]) {
      assert.match(url, /^https:\/\/github\.com\/credsync\/credsync(\/|$)/, `${url} is under the project home`);
      const m = url.match(/^https:\/\/github\.com\/credsync\/credsync\/blob\/main\/([^#]+)(?:#(.+))?$/);
      if (!m) continue;
      const file = path.join(repo, m[1]);
      assert.ok(fs.existsSync(file), `${url}: ${m[1]} exists`);
      if (m[2]) assert.ok(anchorsOf(fs.readFileSync(file, 'utf8')).has(m[2]), `${url}: a heading #${m[2]} exists`);
    }
    assert.doesNotMatch(text, /\]\((?!https:)/, 'no relative links');
  });

  test('it says what the chart does, how to install it, and the modes', () => {
    const text = readmeText();
    for (const heading of ['## Install', '## Modes', '## Metrics and alerts', '## Values']) assert.ok(text.includes(`\n${heading}\n`), heading);
    assert.match(text, /\nhelm install my-app-credsync charts\/credsync /);
    assert.ok(text.includes('(https://github.com/credsync/credsync/blob/main/docs/install.md)'), 'the long form is linked');
    const modes = markdownSection(text, '## Modes');
    for (const mode of ['auto', 'native', 'classic']) assert.ok(modes.includes(`- \`${mode}\``), `sidecar.mode ${mode}`);
    for (const key of ['rrsa.projectToken', 'config.identity.type', 'config.kms.instances']) assert.ok(modes.includes(key), key);
  });
});

// The chart as scripts/test.sh packages it (helm package, into the build
// tree there, a temporary directory here): what a chart repository serves
// and `helm install credsync-<version>.tgz` reads.
describe('helm package: the packaged chart', () => {
  const meta = YAML.parse(fs.readFileSync(path.join(chart, 'Chart.yaml'), 'utf8'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-package-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const packaged = helm(['package', chart, '--destination', tmp]);
  const tgz = path.join(tmp, `credsync-${meta.version}.tgz`);

  test('helm package writes credsync-<version>.tgz', () => {
    assert.equal(packaged.status, 0, packaged.stderr);
    assert.deepEqual(fs.readdirSync(tmp), [path.basename(tgz)]);
  });

  test('it holds the chart, its README and schema; not ci/ or the icon (.helmignore)', () => {
    const r = spawnSync('tar', ['-tzf', tgz], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = r.stdout.trim().split('\n').sort();
    for (const f of ['Chart.yaml', 'README.md', 'values.yaml', 'values.schema.json', 'templates/NOTES.txt',
                     'templates/_helpers.tpl', 'templates/podmonitor.yaml', 'templates/prometheusrule.yaml']) {
      assert.ok(files.includes(`credsync/${f}`), `credsync/${f} is packaged`);
    }
    assert.deepEqual(files.filter((f) => /^credsync\/(ci\/|icon\.svg)/.test(f)), []);
  });

  test('helm show chart / readme / values of the package are the chart\'s files', () => {
    const show = (what) => {
      const r = helm(['show', what, tgz]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    assert.deepEqual(YAML.parse(show('chart')), meta);
    assert.equal(show('readme').trimEnd(), fs.readFileSync(path.join(chart, 'README.md'), 'utf8').trimEnd());
    assert.deepEqual(YAML.parse(show('values')), YAML.parse(fs.readFileSync(path.join(chart, 'values.yaml'), 'utf8')));
  });

  for (const file of ['minimal-values.yaml', 'metrics-values.yaml', 'classic-values.yaml']) {
    test(`helm template of the package with ci/${file} renders what the chart directory renders`, async () => {
      const args = (src) => ['template', 'rel', src, '--namespace', 'apps', '--kube-version', KUBE_VERSION, '-f', path.join(ciDir, file)];
      const fromPackage = helm(args(tgz));
      assert.equal(fromPackage.status, 0, fromPackage.stderr);
      const objs = parseObjects(fromPackage.stdout);
      assert.deepEqual(objs, parseObjects(helm(args(chart)).stdout));
      await assertModels(objs);
      assertValidates(objs);
    });
  }

  test('the package lints clean and keeps its schema: a bad value is refused', () => {
    const lint = helm(['lint', '--strict', tgz, '-f', minimal]);
    assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    const bad = helm(['template', 'rel', tgz, '-f', minimal, '--set', 'sidecar.mode=sidecar']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /values don't meet the specifications of the schema/);
  });
});

describe('plain manifests for users without Helm', () => {
  test('deploy/manifests/credsync.yaml is the chart rendered with its values', () => {
    const r = spawnSync(path.join(repo, 'scripts', 'render-manifests.sh'), ['--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  const manifests = () => {
    const text = fs.readFileSync(path.join(repo, 'deploy', 'manifests', 'credsync.yaml'), 'utf8');
    return YAML.parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);
  };
  // `kubectl kustomize DIR` (kubectl from scripts/kubectl.sh), parsed.
  const kustomize = (dir) => {
    const r = spawnSync(path.join(repo, 'scripts', 'kubectl.sh'), ['kustomize', path.join(repo, dir)],
                        { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr);
    return YAML.parseAllDocuments(r.stdout).map((d) => d.toJS()).filter(Boolean);
  };
  const byKindName = (objs) => Object.fromEntries(objs.map((o) => [`${o.kind}/${o.metadata.name}`, o]));

  test('the manifests are valid Kubernetes objects', async () => {
    const objs = manifests();
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'ServiceAccount']);
    await assertModels(objs);
  });

  // Their header says `kubectl apply -n <namespace>`: a namespace baked in
  // would make kubectl refuse (or, matching, ignore) the one asked for.
  test('no object names a namespace', () => {
    for (const o of manifests()) assert.equal(o.metadata.namespace, undefined, `${o.kind}/${o.metadata.name}`);
  });

  test('the kustomize base is exactly the manifests', () => {
    assert.deepEqual(byKindName(kustomize('deploy/kustomize/base')), byKindName(manifests()));
  });

  test('the example overlay places everything in its namespace with its image', async () => {
    const objs = kustomize('deploy/kustomize/example');
    assert.deepEqual(objs.map((o) => o.metadata.namespace), objs.map(() => 'my-app'));
    const pod = find(objs, 'Deployment').spec.template.spec;
    const credsync = [...pod.initContainers, ...pod.containers].filter((c) => c.name.startsWith('credsync'));
    assert.ok(credsync.length > 0);
    for (const c of credsync) assert.equal(c.image, 'registry.example.com/platform/credsync:0.1.0');
    await assertModels(objs);
  });
});
