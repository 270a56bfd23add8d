// The injector's answers, taken the way the API server takes them, for the
// end-to-end proofs that an injected pod runs (tests/e2e/pod and
// tests/e2e/podman) and that every fixture's patch applies
// (tests/e2e/injector/patches.test.mjs):
//
//   const review = admissionReview(pod);
//   const answer = runReview({binary, flags, review, file});
//   const {pod: patched, ops} = applyAnswer(pod, answer);   // fast-json-patch
//   await assertValidPod(patched);                          // kubernetes-models
//
// The patch is applied by fast-json-patch (RFC 6902), an implementation that
// shares nothing with the injector's C++, with its operation validation on:
// an `add` whose parent is missing, a bad pointer or escape fails here as the
// API server would refuse it.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

import jsonpatch from 'fast-json-patch';

// A Pod as the ReplicaSet controller creates it from a Deployment, after the
// API server's defaulting and the built-in admission plugins (the service
// account's kube-api-access volume and its mounts): what a mutating webhook
// is really shown, not a bare template.
export function podFromDeployment(deployment, { serviceAccountVolume = true } = {}) {
  const template = structuredClone(deployment.spec.template);
  const spec = template.spec;
  const defaults = (c) => ({
    imagePullPolicy: 'IfNotPresent', resources: {}, terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File', ...c,
  });
  spec.containers = spec.containers.map(defaults);
  if (spec.initContainers) spec.initContainers = spec.initContainers.map(defaults);
  const serviceAccount = spec.serviceAccountName ?? 'default';
  Object.assign(spec, {
    restartPolicy: spec.restartPolicy ?? 'Always',
    dnsPolicy: spec.dnsPolicy ?? 'ClusterFirst',
    schedulerName: spec.schedulerName ?? 'default-scheduler',
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? 30,
    enableServiceLinks: spec.enableServiceLinks ?? true,
    securityContext: spec.securityContext ?? {},
    serviceAccountName: serviceAccount,
    serviceAccount,
  });
  if (serviceAccountVolume) {
    const name = 'kube-api-access-x7k2d';
    spec.volumes = [...(spec.volumes ?? []), {
      name,
      projected: {
        defaultMode: 0o644,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    }];
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      c.volumeMounts = [...(c.volumeMounts ?? []),
        { name, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }];
    }
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...template.metadata,
      generateName: `${deployment.metadata.name}-7d4b9c8f6d-`,
      namespace: deployment.metadata.namespace,
    },
    spec,
  };
}

// The AdmissionReview the API server sends for the CREATE of a pod (its
// namespace from the pod's metadata): the injector server's e2e harness's.
export { admissionReview } from '../node/injector.mjs';

// `credsync injector review FLAGS --file FILE` on `review` (written to
// `file`): the parsed AdmissionReview it answers. Exit 0 is required: an
// answer, allowed or denied, is in the JSON.
export function runReview({ binary, flags, review, file }) {
  fs.writeFileSync(file, JSON.stringify(review, null, 2));
  const args = ['injector', 'review', ...flags, '--file', file];
  const r = spawnSync(binary, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  assert.equal(r.status, 0, `credsync ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}${r.error?.message ?? ''}`);
  const answer = JSON.parse(r.stdout);
  assert.equal(answer.apiVersion, 'admission.k8s.io/v1', `the answer: ${r.stdout}`);
  assert.equal(answer.kind, 'AdmissionReview', `the answer: ${r.stdout}`);
  assert.equal(answer.response?.uid, review.request.uid, 'the answer names the request\'s uid');
  return answer;
}

// The JSON Patch operations of an answer (response.patch, base64); [] when
// it has none (a skipped pod).
export function patchOps(answer) {
  const response = answer.response;
  if (response.patch === undefined) {
    assert.equal(response.patchType, undefined, 'a patchType without a patch');
    return [];
  }
  assert.equal(response.patchType, 'JSONPatch');
  assert.match(response.patch, /^[A-Za-z0-9+/]*={0,2}$/, 'response.patch is not base64');
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
  assert.ok(Array.isArray(ops), `the patch is not a JSON array: ${JSON.stringify(ops).slice(0, 200)}`);
  return ops;
}

// The one value the injector may replace: ACK's pod-identity webhook's list
// of containers, to which the contract appends ours, keeping the pod's.
const ONLY_CONTAINERS = '/metadata/annotations/pod-identity.alibabacloud.com~1only-containers';

// Applies an allowed answer's patch to a copy of `object` with
// fast-json-patch, every operation validated against the document as it is
// at that step; resolves {pod, ops}. Also asserts the contract's rules on
// the operations: only `add`, never onto a member that exists (nothing of the
// app's is replaced; an absent array or object is added whole), except the
// only-containers annotation, whose names are kept.
export function applyAnswer(object, answer) {
  assert.equal(answer.response.allowed, true,
               `the injector denied the pod: ${JSON.stringify(answer.response.status ?? answer.response)}`);
  const ops = patchOps(answer);
  let doc = structuredClone(object);
  ops.forEach((op, i) => {
    const where = `patch operation ${i} ${JSON.stringify(op).slice(0, 300)}`;
    const error = jsonpatch.validate([op], doc);
    assert.equal(error, undefined, `${where}: ${error?.name} ${error?.message}`);
    if (op.op === 'replace' && op.path === ONLY_CONTAINERS) {
      const names = (list) => String(list).split(',').map((n) => n.trim());
      const kept = names(jsonpatch.getValueByPointer(doc, op.path));
      assert.deepEqual(names(op.value).slice(0, kept.length), kept, `${where}: drops the pod's names`);
      doc = jsonpatch.applyOperation(doc, op, true, true, true).newDocument;
      return;
    }
    assert.equal(op.op, 'add', `${where}: the injector only adds`);
    const tokens = op.path.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    const parent = jsonpatch.getValueByPointer(doc, op.path.slice(0, op.path.lastIndexOf('/')));
    if (!Array.isArray(parent)) {
      assert.ok(!Object.prototype.hasOwnProperty.call(parent, tokens.at(-1)),
                `${where}: replaces the pod's own ${op.path}`);
    }
    doc = jsonpatch.applyOperation(doc, op, /* validate */ true, /* mutate */ true,
                                   /* banPrototypeModifications */ true).newDocument;
  });
  // The whole patch once more in one call, as a client applies it.
  const whole = jsonpatch.applyPatch(structuredClone(object), ops, true, true, true).newDocument;
  assert.deepEqual(whole, doc, 'the patch applied at once differs from the patch applied step by step');
  // Everything of the pod's is still there (the only-containers list was
  // checked above: the pod's names first).
  const before = structuredClone(object);
  if (ops.some((op) => op.op === 'replace')) {
    before.metadata.annotations['pod-identity.alibabacloud.com/only-containers'] =
      doc.metadata.annotations['pod-identity.alibabacloud.com/only-containers'];
  }
  assertKeeps(before, doc, 'pod');
  return { pod: doc, ops };
}

// `after` still holds everything of `before`: every member, every element
// (list elements with a name matched by name, others in order).
export function assertKeeps(before, after, where) {
  if (Array.isArray(before)) {
    assert.ok(Array.isArray(after), `${where} is no longer a list`);
    const named = before.every((e) => e && typeof e === 'object' && typeof e.name === 'string');
    let from = 0;
    before.forEach((e, i) => {
      if (named) {
        const match = after.find((x) => x?.name === e.name);
        assert.ok(match, `${where}: ${e.name} was removed`);
        assertKeeps(e, match, `${where}[${e.name}]`);
        return;
      }
      const at = after.findIndex((x, j) => j >= from && JSON.stringify(x) === JSON.stringify(e));
      assert.ok(at >= 0, `${where}[${i}] ${JSON.stringify(e)} was removed or reordered`);
      from = at + 1;
    });
  } else if (before && typeof before === 'object') {
    assert.ok(after && typeof after === 'object' && !Array.isArray(after), `${where} is no longer an object`);
    for (const [k, v] of Object.entries(before)) {
      assert.ok(Object.prototype.hasOwnProperty.call(after, k), `${where}.${k} was removed`);
      assertKeeps(v, after[k], `${where}.${k}`);
    }
  } else {
    assert.equal(after, before, `${where} was changed`);
  }
}

// The patched object passes the typed Kubernetes model of its kind
// (types, required fields, enums), as tests/chart/chart.test.mjs checks the
// chart's objects.
export async function assertValidPod(pod) {
  const { Pod } = await import('kubernetes-models/v1');
  assert.doesNotThrow(() => new Pod(pod).validate(), `the patched pod is not a valid v1 Pod`);
}

export function findContainer(spec, name) {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((c) => c.name === name);
}

// The CREDSYNC_CONFIG document a credsync container of the patched pod runs
// with (the annotation-derived config, compact JSON).
export function injectedConfig(container) {
  const v = (container.env ?? []).find((e) => e.name === 'CREDSYNC_CONFIG');
  assert.ok(v?.value, `${container.name} has no CREDSYNC_CONFIG`);
  return JSON.parse(v.value);
}

// ---------------------------------------------------------------- the test world

// The ConfigMap the injected pods name with credsync.io/config-map: the
// test environment's endpoints (the emulator for KMS and STS) and the
// emulator's CA, as an operator points credsync at private endpoints. The
// injector mounts its config.yaml at /etc/credsync/injected and overlays the
// annotation-derived document (profiles, region, output group) on it. Its
// ca.pem is there too (the injector mounts every key of the ConfigMap), so
// tls.ca_file names it; the apps mount it with a volume of their own.
export const INJECTED_CONFIG_DIR = '/etc/credsync/injected';
export const EMULATOR_CA_VOLUME = 'emulator-ca';
export function emulatorConfigMap({ name, namespace, emu }) {
  const config = [
    '# The test environment: KMS and STS are credsync-emulator, trusted by its CA.',
    'kms:',
    `  endpoints: ["${emu.url}"]`,
    'identity:',
    `  sts_endpoint: "${emu.url}"`,
    'tls:',
    `  ca_file: ${INJECTED_CONFIG_DIR}/ca.pem`,
    '',
  ].join('\n');
  return {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace },
    data: { 'config.yaml': config, 'ca.pem': emu.ca.toString('utf8') },
  };
}

// The RRSA world of one injected pod: the OIDC provider trusts the audience
// the injector projects (sts.aliyuncs.com), the role trusts the pod's service
// account and may read `secret`, which is created. Resolves the secret's
// first AccessKey id.
export async function injectionWorld(emu, { issuer, providerArn, roleArn, namespace, serviceAccount, secret }) {
  await emu.admin('POST', '/admin/oidc-providers', { arn: providerArn, issuer, audiences: ['sts.aliyuncs.com'] });
  await emu.admin('POST', '/admin/roles', {
    arn: roleArn, oidc_provider_arn: providerArn,
    subjects: [`system:serviceaccount:${namespace}:${serviceAccount}`], secrets: [secret],
  });
  return (await emu.admin('POST', '/admin/secrets', { name: secret })).access_key_id;
}

// A user's plain Deployment that opts in to injection (the label the
// webhook's objectSelector selects) and names its secret, role and the
// endpoints ConfigMap in annotations; nothing of credsync in its spec.
export function injectableDeployment({ name, namespace, serviceAccount, secret, roleArn, configMap,
                                       annotations = {}, spec }) {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: {
          labels: { app: name, 'credsync.io/inject': 'true' },
          annotations: {
            'credsync.io/secret-default': secret,
            'credsync.io/role-arn': roleArn,
            'credsync.io/config-map': configMap,
            ...annotations,
          },
        },
        spec: { serviceAccountName: serviceAccount, ...spec },
      },
    },
  };
}

export const keyIdsIn = (ini) => [...ini.matchAll(/^access_key_id\s*=\s*(\S+)\s*$/gm)].map((m) => m[1]);
