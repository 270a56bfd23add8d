// Every injector fixture (tests/unit/injector/fixtures/*.review.json: real
// pods as the API server sends them) answered by `credsync injector review`
// in each mode, the patch applied by an independent RFC 6902 implementation
// (fast-json-patch, each operation validated against the pod as it is at
// that step) and the result validated by the typed Kubernetes models
// (kubernetes-models): what the unit tests check with nlohmann's patch()
// holds for a second implementation and the API's schema too. The patched
// pod, reviewed again (the webhook's reinvocation), is left alone.
//
//   CREDSYNC_BIN=build/release/sidecar/credsync node --test tests/e2e/injector/patches.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { REPO } from '../pod/podsim.mjs';
import { admissionReview, applyAnswer, assertValidPod, patchOps, runReview } from './injection.mjs';

const binary = process.env.CREDSYNC_BIN;
const FIXTURES = path.join(REPO, 'tests', 'unit', 'injector', 'fixtures');
// The settings the unit tests inject with (tests/unit/injector/injector_fixtures.h).
const FLAGS = ['--image', 'registry.example.com/credsync:1.0.0', '--kms-region', 'cn-hangzhou',
               '--oidc-provider-arn', 'acs:ram::1234567890123456:oidc-provider/ack-rrsa-cluster'];
const MODES = { native: ['--default-mode', 'native'], classic: ['--default-mode', 'classic'] };

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-injector-patches-'));
after(() => fs.rmSync(workDir, { recursive: true, force: true }));

const fixtures = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.review.json')).sort();

describe('the injector fixtures, patched by fast-json-patch', () => {
  test('there are fixtures, and CREDSYNC_BIN names the binary', () => {
    assert.ok(binary && fs.existsSync(binary), `CREDSYNC_BIN=${binary} does not name the credsync binary`);
    assert.ok(fixtures.length >= 5, `want the injector's fixtures in ${FIXTURES}, found ${fixtures.length}`);
  });

  let patchedCount = 0;
  for (const fixture of fixtures) {
    for (const [mode, modeFlags] of Object.entries(MODES)) {
      test(`${fixture} (${mode})`, async () => {
        const review = JSON.parse(fs.readFileSync(path.join(FIXTURES, fixture), 'utf8'));
        const stem = `${fixture.replace(/\.review\.json$/, '')}-${mode}`;
        const answer = runReview({ binary, flags: [...FLAGS, ...modeFlags], review,
                                   file: path.join(workDir, `${stem}.review.json`) });
        if (!answer.response.allowed) {
          // A denial is one line naming what is wrong, and has no patch.
          assert.equal(answer.response.status?.code, 400);
          assert.match(answer.response.status?.message ?? '', /^[^\n]+$/);
          assert.equal(answer.response.patch, undefined);
          return;
        }
        const { pod, ops } = applyAnswer(review.request.object, answer);
        if (ops.length === 0) return;  // skipped (already injected, not opted in)
        patchedCount++;
        await assertValidPod(pod);
        assert.equal(pod.metadata.annotations?.['credsync.io/status'], 'injected');
        // The sidecar (named credsync, or credsync-N when the pod has that
        // name): first init container with restartPolicy Always in native
        // mode, the last container in classic mode (the pod's
        // credsync.io/mode beats --default-mode).
        const isSidecar = (c) => c.image === FLAGS[1] && c.args?.[0] === 'run';
        const podMode = review.request.object.metadata?.annotations?.['credsync.io/mode'] ?? mode;
        if (podMode === 'native') {
          const sidecar = pod.spec.initContainers?.find(isSidecar);
          assert.ok(sidecar, 'native: no credsync init container');
          assert.equal(sidecar.restartPolicy, 'Always');
        } else {
          assert.ok(isSidecar(pod.spec.containers.at(-1)), 'classic: credsync is not the last container');
        }

        // Reinvocation: the patched pod is reviewed again and left as it is.
        const again = runReview({ binary, flags: [...FLAGS, ...modeFlags],
                                  review: admissionReview(pod),
                                  file: path.join(workDir, `${stem}.again.review.json`) });
        assert.equal(again.response.allowed, true);
        assert.deepEqual(patchOps(again), [], 'the injected pod was patched again');
      });
    }
  }

  // The checks above mean something: applyAnswer refuses the patches the
  // API server would refuse, and the ones the contract forbids.
  test('applyAnswer refuses a bad patch', () => {
    const review = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'deployment.review.json'), 'utf8'));
    const pod = review.request.object;
    const answerWith = (ops) => ({ response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch',
                                               patch: Buffer.from(JSON.stringify(ops)).toString('base64') } });
    const bad = {
      'an add under a missing parent': [{ op: 'add', path: '/spec/nodeSelector/zone', value: 'a' }],
      'an annotation key not escaped': [{ op: 'add', path: '/metadata/annotations/credsync.io/status', value: 'injected' }],
      'an add onto the pod\'s own member': [{ op: 'add', path: '/spec/containers/0/image', value: 'evil' }],
      'a replace': [{ op: 'replace', path: '/spec/containers/0/name', value: 'x' }],
      'a remove': [{ op: 'remove', path: '/spec/containers/0' }],
    };
    for (const [what, ops] of Object.entries(bad)) {
      assert.throws(() => applyAnswer(pod, answerWith(ops)), undefined, `applyAnswer accepted ${what}`);
    }
    const good = [{ op: 'add', path: '/metadata/annotations/credsync.io~1status', value: 'injected' }];
    assert.equal(applyAnswer(pod, answerWith(good)).pod.metadata.annotations['credsync.io/status'], 'injected');
  });

  // credentials-uri.review.json: the listed containers get the local API's
  // URI (the pod's own path secret, their profile) and ECS metadata
  // disabled, not the file, the mount or an RRSA variable; credsync gets the
  // secret and local_api; every review draws another secret.
  for (const [mode, modeFlags] of Object.entries(MODES)) {
    test(`credentials-uri.review.json: the URI in api and exporter, the file in legacy-batch (${mode})`, async () => {
      const review = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'credentials-uri.review.json'), 'utf8'));
      const answerFor = (n) => runReview({ binary, flags: [...FLAGS, ...modeFlags], review,
                                           file: path.join(workDir, `credentials-uri-${mode}-${n}.review.json`) });
      const answer = answerFor(1);
      assert.equal(answer.response.allowed, true, JSON.stringify(answer.response.status));
      assert.equal(answer.response.warnings, undefined);
      const { pod } = applyAnswer(review.request.object, answer);
      await assertValidPod(pod);
      const envOf = (c) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
      const credsync = [...(pod.spec.initContainers ?? []), ...pod.spec.containers]
        .find((c) => c.name === 'credsync' && c.args?.[0] === 'run');
      const secret = envOf(credsync).CREDSYNC_LOCAL_API_PATH_SECRET;
      assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(JSON.parse(envOf(credsync).CREDSYNC_CONFIG).local_api, {
        listen: '127.0.0.1:8190', path_secret_env: 'CREDSYNC_LOCAL_API_PATH_SECRET', refetch_within: '60s',
      });
      for (const [name, profile] of [['api', 'default'], ['exporter', 'billing']]) {
        const c = pod.spec.containers.find((x) => x.name === name);
        const env = envOf(c);
        assert.equal(env.ALIBABA_CLOUD_CREDENTIALS_URI, `http://127.0.0.1:8190/${secret}/v1/credentials/${profile}`, name);
        assert.equal(env.ALIBABA_CLOUD_ECS_METADATA_DISABLED, 'true', name);
        for (const absent of ['ALIBABA_CLOUD_CREDENTIALS_FILE', 'ALIBABA_CLOUD_ROLE_ARN', 'ALIBABA_CLOUD_OIDC_TOKEN_FILE']) {
          assert.equal(env[absent], undefined, `${absent} in ${name}`);
        }
        assert.ok(!(c.volumeMounts ?? []).some((m) => m.mountPath === '/var/run/credsync'), `${name} mounts the file`);
      }
      const batch = envOf(pod.spec.containers.find((x) => x.name === 'legacy-batch'));
      assert.equal(batch.ALIBABA_CLOUD_CREDENTIALS_FILE, '/var/run/credsync/credentials.ini');
      assert.equal(batch.ALIBABA_CLOUD_CREDENTIALS_URI, undefined);
      // A fresh secret per admission.
      const second = applyAnswer(review.request.object, answerFor(2)).pod;
      const secondCredsync = [...(second.spec.initContainers ?? []), ...second.spec.containers]
        .find((c) => c.name === 'credsync' && c.args?.[0] === 'run');
      assert.notEqual(envOf(secondCredsync).CREDSYNC_LOCAL_API_PATH_SECRET, secret);
    });
  }

  test('some fixture was patched in each mode', () => {
    assert.ok(patchedCount >= 2 * 3, `only ${patchedCount} fixture answers had a patch`);
  });
});
