// Node.js apps without code (issue 19, "External mode"): the official
// @alicloud/credentials default chain reads a CLI profile in mode "External"
// from ~/.aliyun/config.json, whose process_command is
// deploy/examples/node-external/credsync-external.cjs reading credsync's
// credentials.ini. The app (tests/e2e/node/external_app.mjs) builds its
// credential and API clients once and never again; a rotation reaches its
// calls within refetch_within, and the read-only config.json is never
// written (the SDK tries to write the key back into it, and ignores the
// failure).
//
// The app runs as a child process, as another user than credsync when the
// test runs as root (setpriv to 65534), so that the read-only config.json is
// really read-only, as a ConfigMap mount is in a pod.
//
// Sources (@alicloud/credentials 2.4.7): src/providers/default.ts (the chain:
// environment, OIDC, CLI profile, credentials file, ECS metadata, URI),
// src/providers/cli_profile.ts (path.join(os.homedir(), '.aliyun',
// 'config.json'); profile ALIBABA_CLOUD_PROFILE or "current"; the
// External write-back in createExternalCredentialUpdateCallback, errors
// swallowed), src/providers/external.ts (execFile, no shell, 60 s timeout;
// run again when expiration - now <= 180 s).
//
// Run through tests/e2e/node/run.sh (ctest: e2e_node_sdk_external).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { startEmulator } from './emulator.mjs';
import { runCredsync, setUpRrsaWorld, startSidecar, until, waitForFile, writeConfig } from './sidecar.mjs';

const require = createRequire(import.meta.url);
const { CLIProfileCredentialsProvider } = require('@alicloud/credentials');

const here = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.resolve(here, '..', '..', '..', 'deploy', 'examples', 'node-external', 'credsync-external.cjs');
const APP = path.join(here, 'external_app.mjs');
const COUNTING = path.join(here, 'external_counting.cjs');
const SECRET = 'acs/ram/user/external-app';
const REFETCH_WITHIN_S = 10;  // the script's minimum, to keep the test short
const NOBODY = 65534;

let emu;
let sc;
let app;

before(async () => {
  emu = await startEmulator();
});

after(async () => {
  app?.child.kill('SIGKILL');
  await sc?.stop();
  await emu?.stop();
});

// Starts external_app.mjs with `env` only (plus PATH), as NOBODY when this
// runs as root. Returns {child, lines (parsed so far), stderr()}.
function startApp(env) {
  const asRoot = process.getuid() === 0;
  const command = asRoot
    ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, APP]
    : [process.execPath, APP];
  const child = spawn(command[0], command.slice(1), {
    env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  let stderr = '';
  readline.createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  return { child, lines, stderr: () => stderr };
}

describe('Node apps through an External CLI profile', () => {
  // Verifies the whole route: the default chain picks the External profile,
  // the calls work with credsync's key (no security token), a rotation
  // reaches the running app within refetch_within without any rebuild, and
  // config.json stays as mounted, with no key in it.
  it('a rotation reaches an app with no credential code', async () => {
    const world = await setUpRrsaWorld(emu, { name: 'external', secrets: [SECRET] });
    // The app's user must reach the output directory and its home.
    fs.chmodSync(world.dir, 0o755);
    const out = path.join(world.dir, 'out');
    const file = path.join(out, 'credentials.ini');
    const appGid = process.getuid() === 0 ? NOBODY : process.getgid();
    const configFile = writeConfig(world.dir, {
      kms: { endpoints: [emu.endpoint] },
      tls: { ca_file: emu.caFile },
      profiles: [{ name: 'default', secret_name: SECRET }],
      output: { directory: out, group: appGid, file_mode: '0440' },
      refresh: { interval: '1h', jitter: 0, rotation_jitter: '0s' },
    });
    sc = await startSidecar({ configFile, env: world.env, name: 'external' });
    const socket = await sc.listening('unix');
    const first = world.secrets[SECRET];
    await waitForFile(file, (c) => c.includes(first.access_key_id));

    // The pod's ConfigMap: ~/.aliyun/config.json, read-only.
    const home = path.join(world.dir, 'home');
    fs.mkdirSync(path.join(home, '.aliyun'), { recursive: true, mode: 0o755 });
    fs.chmodSync(home, 0o755);
    fs.chmodSync(path.join(home, '.aliyun'), 0o755);
    const cliConfig = path.join(home, '.aliyun', 'config.json');
    const mounted = `${JSON.stringify({
      current: 'credsync',
      profiles: [{
        name: 'credsync',
        mode: 'External',
        process_command: `node ${SCRIPT} --file ${file} --profile default --refetch-within ${REFETCH_WITHIN_S}`,
      }],
    }, null, 2)}\n`;
    fs.writeFileSync(cliConfig, mounted, { mode: 0o444 });
    fs.chmodSync(cliConfig, 0o444);

    // The app container's environment: no ALIBABA_CLOUD_ACCESS_KEY_ID, no
    // RRSA variables, no ALIBABA_CLOUD_CREDENTIALS_FILE; ECS metadata off.
    app = startApp({
      HOME: home,
      ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
      APP_ENDPOINT: emu.endpoint,
      APP_CA_PEM: emu.ca.toString(),
      APP_PERIOD_MS: '250',
    });
    const { lines } = app;
    const failWith = (what) => `${what}; app lines: ${JSON.stringify(lines.slice(-5))}; stderr: ${app.stderr()}`;

    await until(() => lines.some((l) => l.ok), 'a first successful call', 30000)
      .catch((err) => { throw new Error(failWith(err.message)); });
    const firstOk = lines.find((l) => l.ok);
    assert.equal(firstOk.key, first.access_key_id);
    assert.equal(firstOk.provider, 'default/cli_profile');
    assert.equal(firstOk.token, 'none');

    // Rotation: a new key in KMS, the old one still valid (managed rotation);
    // credsync learns of it (here through `credsync refresh`) and rewrites the file.
    const rotated = await emu.admin('POST', `/admin/secrets/${encodeURIComponent(SECRET)}/rotate`, {});
    const cli = await runCredsync(['refresh', '--profile', 'default', '--failed-key-id', first.access_key_id,
                                   '--socket', socket], { name: 'external-refresh' });
    assert.equal(cli.code, 0, cli.stderr);
    await waitForFile(file, (c) => c.includes(rotated.access_key_id));
    const published = Date.now();

    await until(() => lines.some((l) => l.key === rotated.access_key_id && l.ok),
                'the app calling with the new key', (REFETCH_WITHIN_S + 10) * 1000)
      .catch((err) => { throw new Error(failWith(err.message)); });
    const reached = lines.find((l) => l.key === rotated.access_key_id && l.ok);
    const delayS = (reached.t - published) / 1000;
    // The command last ran at most refetch_within before `published`, so the
    // next run is at most refetch_within after it (plus one app period and
    // the command's own start-up).
    assert.ok(delayS <= REFETCH_WITHIN_S + 3, `the new key reached the app ${delayS} s after the file changed`);
    assert.ok(lines.every((l) => l.ok), failWith('a call failed'));
    app.child.kill('SIGTERM');

    // The SDK tried to write the key into config.json, which is read-only:
    // it is as mounted, with no key in it.
    const now = fs.readFileSync(cliConfig, 'utf8');
    assert.equal(now, mounted, 'config.json was rewritten');
    assert.doesNotMatch(now, /access_key/);
  });

  // Verifies what docs/integration.md says the route costs: the library
  // does not coalesce runs. Every call that finds the key due starts the
  // command, so 20 concurrent calls at that moment run it 20 times. If a
  // release coalesces them, this fails: update the "Cost" paragraph.
  it('concurrent calls that find the key due each run the command', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-external-herd-'));
    const ini = path.join(dir, 'credentials.ini');
    fs.writeFileSync(ini, '[default]\nenable = true\ntype = access_key\n' +
                     'access_key_id = LTAIherd\naccess_key_secret = not-a-real-secret\n');
    const runs = path.join(dir, 'runs');
    fs.mkdirSync(path.join(dir, '.aliyun'));
    fs.writeFileSync(path.join(dir, '.aliyun', 'config.json'), JSON.stringify({
      current: 'credsync',
      profiles: [{
        name: 'credsync',
        mode: 'External',
        process_command: `node ${COUNTING} --file ${ini} --refetch-within ${REFETCH_WITHIN_S}`,
      }],
    }));
    const saved = { HOME: process.env.HOME, RUNS: process.env.CREDSYNC_TEST_EXTERNAL_RUNS,
                    PROFILE: process.env.ALIBABA_CLOUD_PROFILE };
    process.env.HOME = dir;  // os.homedir(), read when the provider is built
    process.env.CREDSYNC_TEST_EXTERNAL_RUNS = runs;
    delete process.env.ALIBABA_CLOUD_PROFILE;
    const count = () => fs.readFileSync(runs, 'utf8').split('\n').filter(Boolean).length;
    try {
      const provider = CLIProfileCredentialsProvider.builder().build();
      assert.equal((await provider.getCredentials()).accessKeyId, 'LTAIherd');
      assert.equal(count(), 1);
      // Due refetch_within after the run (expiration - now <= 180 s).
      await new Promise((resolve) => setTimeout(resolve, (REFETCH_WITHIN_S + 1) * 1000));
      const answers = await Promise.all(Array.from({ length: 20 }, () => provider.getCredentials()));
      assert.ok(answers.every((c) => c.accessKeyId === 'LTAIherd'));
      assert.equal(count(), 1 + 20,
                   `@alicloud/credentials ran the External command ${count() - 1} times for 20 concurrent ` +
                   'calls: update the "Cost" paragraph of docs/integration.md and this test');
    } finally {
      for (const [name, value] of [['HOME', saved.HOME], ['CREDSYNC_TEST_EXTERNAL_RUNS', saved.RUNS],
                                   ['ALIBABA_CLOUD_PROFILE', saved.PROFILE]]) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
