// Bad input, end to end (issue 6, design 3.5): the real credsync binary,
// given an invalid value for every configuration key, a bad environment or
// bad flags, exits 2 with exactly one stderr line that names the key, prints
// nothing on stdout, and writes nothing: the output directory stays empty
// and no file appears anywhere in the case's directory (its working
// directory). `run` exits instead of serving.
//
// The invalid values are tests/config/invalid_cases.json, the table
// tests/unit/config/config_test.cc runs against parseConfig: one table, two
// levels. Every key docs/configuration.md documents must have a case there.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runCredsync, sidecarBinary } from './sidecar.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const table = JSON.parse(fs.readFileSync(path.join(repo, 'tests/config/invalid_cases.json'), 'utf8'));
const PROFILES = 'profiles:\n  - {name: app, secret_name: acs/ram/user/app}\n';
const COMMANDS = [['validate'], ['run'], ['sync', '--once']];
// A bad-input exit is immediate; `run` taking this long means it is serving.
const EXIT_TIMEOUT_MS = 10000;
const CONCURRENCY = 4;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-badinput-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let caseCounter = 0;

// The same rendering as config_test.cc's renderYaml: {"a.b": v} becomes
// "a:\n  b: v\n"; values verbatim; `profiles` last, unless the case sets it.
function renderYaml(dotted) {
  const sections = new Map();
  for (const [key, value] of Object.entries(dotted)) {
    if (key === 'profiles') continue;
    const dot = key.indexOf('.');
    const section = key.slice(0, dot);
    if (!sections.has(section)) sections.set(section, []);
    sections.get(section).push(`  ${key.slice(dot + 1)}: ${value}\n`);
  }
  let out = '';
  for (const [section, lines] of sections) out += `${section}:\n${lines.join('')}`;
  return out + (dotted.profiles === undefined ? PROFILES : `profiles: ${dotted.profiles}\n`);
}

// A fresh case dir with an empty output dir; the config keeps credsync's
// output, socket and HTTP listener inside it unless the case is about them.
function newCase(label) {
  const dir = path.join(root, `case-${++caseCounter}`);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out, { recursive: true });
  return { dir, out, label };
}

function baseKeys(c) {
  return { 'output.directory': c.out, 'control.http_address': '127.0.0.1:0' };
}

// The config of a table case: the base keys with the case's value in place.
function configForKeyCase(c, { key, value }) {
  const keys = baseKeys(c);
  if (!key.includes('.') && key !== 'profiles') {
    for (const k of Object.keys(keys)) if (k.startsWith(`${key}.`)) delete keys[k];
    return `${key}: ${value}\n${renderYaml(keys)}`;
  }
  keys[key] = value;
  return renderYaml(keys);
}

function run(args, { env, cwd }) {
  return new Promise((resolve) => {
    const child = spawn(sidecarBinary(), args, { env: { PATH: process.env.PATH, ...env }, cwd,
                                                 stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, EXIT_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

// Every file and directory under `dir`, relative, sorted.
function listTree(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    out.push(path.relative(dir, path.join(entry.parentPath ?? entry.path, entry.name)));
  }
  return out.sort();
}

// Runs one command of one case and checks the bad-input contract; returns a
// list of problems (empty when it held).
async function checkBadInput({ c, args, env, files, expect }) {
  const before = listTree(c.dir);
  const result = await run(args, { env, cwd: c.dir });
  const problems = [];
  const what = `${c.label}: credsync ${args.join(' ')}`;
  if (result.timedOut) problems.push(`${what}: still running after ${EXIT_TIMEOUT_MS} ms (serving?)`);
  else if (result.code !== 2) problems.push(`${what}: exit ${result.code} (signal ${result.signal}), want 2; stderr: ${result.stderr}`);
  const lines = result.stderr.split('\n');
  if (lines.length !== 2 || lines[1] !== '') {
    problems.push(`${what}: stderr has ${lines.length - 1} lines, want exactly 1: ${JSON.stringify(result.stderr)}`);
  } else {
    const message = lines[0].replace(/^credsync: /, '');
    if (!lines[0].startsWith('credsync: ')) problems.push(`${what}: stderr does not start with "credsync: ": ${lines[0]}`);
    if (expect.message !== undefined && message !== expect.message) {
      problems.push(`${what}: stderr ${JSON.stringify(message)}, want ${JSON.stringify(expect.message)}`);
    }
    if (expect.prefix !== undefined && !message.startsWith(expect.prefix)) {
      problems.push(`${what}: stderr ${JSON.stringify(message)} does not start with ${JSON.stringify(expect.prefix)}`);
    }
    if (expect.contains !== undefined && !message.includes(expect.contains)) {
      problems.push(`${what}: stderr ${JSON.stringify(message)} does not say ${JSON.stringify(expect.contains)}`);
    }
  }
  if (result.stdout !== '') problems.push(`${what}: stdout is not empty: ${JSON.stringify(result.stdout)}`);
  for (const secret of [env.ALIBABA_CLOUD_ACCESS_KEY_SECRET, env.ALIBABA_CLOUD_SECURITY_TOKEN]) {
    if (secret && (result.stderr + result.stdout).includes(secret)) problems.push(`${what}: echoes a static secret`);
  }
  const afterTree = listTree(c.dir);
  if (JSON.stringify(afterTree) !== JSON.stringify(before)) {
    problems.push(`${what}: wrote files: before ${JSON.stringify(before)}, after ${JSON.stringify(afterTree)}`);
  }
  if (files !== undefined && JSON.stringify(afterTree) !== JSON.stringify(files)) {
    problems.push(`${what}: the case dir holds ${JSON.stringify(afterTree)}, want ${JSON.stringify(files)}`);
  }
  return problems;
}

// Runs `jobs` (functions returning problem lists) CONCURRENCY at a time.
async function runAll(jobs) {
  const problems = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) problems.push(...await jobs[next++]());
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return problems;
}

function writeConfigFile(c, text) {
  const file = path.join(c.dir, 'config.yaml');
  fs.writeFileSync(file, text);
  return file;
}

const counts = { keys: 0, environment: 0, flags: 0, files: 0, runs: 0 };
after(() => {
  process.stdout.write(`bad input: ${counts.keys} key cases, ${counts.environment} environment cases, ` +
                       `${counts.flags} flag cases, ${counts.files} file cases; ${counts.runs} runs of credsync\n`);
});

describe('bad input, end to end', () => {
  // Verifies every key documented in docs/configuration.md has at least one
  // invalid value in the shared table, so "every key" stays true as keys are added.
  it('the table covers every documented key', () => {
    const doc = fs.readFileSync(path.join(repo, 'docs/configuration.md'), 'utf8');
    const documented = new Set();
    let section = '';
    for (const line of doc.split('\n')) {
      const heading = line.match(/^### `([a-z_]+)`/);
      if (heading) section = heading[1];
      else if (line.startsWith('## ') || line.startsWith('### ')) section = '';
      const row = line.match(/^\| `([a-z_.\[\]]+)` \|/);
      if (!row || !section) continue;
      documented.add(section === 'profiles' ? `profiles[].${row[1]}` : row[1]);
    }
    assert.ok(documented.size >= 40, `only ${documented.size} keys found in docs/configuration.md`);
    const covered = new Set(table.keys.map((k) => k.prefix.split(':')[0].replace(/\[\d+\]/g, '[]')));
    const missing = [...documented].filter((key) => !covered.has(key));
    assert.deepEqual(missing, [], 'documented keys without an invalid value in tests/config/invalid_cases.json');
  });

  // Verifies every invalid value of the table, written in the config file,
  // makes validate, run and sync --once exit 2 with one line naming the key,
  // and write nothing.
  it('an invalid value for every key: exit 2, one line, nothing written', async () => {
    const jobs = [];
    for (const entry of table.keys) {
      for (const command of COMMANDS) {
        jobs.push(async () => {
          const c = newCase(`${entry.key} = ${entry.value.slice(0, 40)}`);
          const file = writeConfigFile(c, configForKeyCase(c, entry));
          ++counts.runs;
          return checkBadInput({ c, args: [...command, '--config', file], env: table.base_environment,
                                 files: ['config.yaml', 'out'], expect: { prefix: entry.prefix } });
        });
      }
    }
    counts.keys = table.keys.length;
    assert.ok(table.keys.length >= 90, `only ${table.keys.length} cases in the table`);
    const problems = await runAll(jobs);
    assert.deepEqual(problems, []);
  });

  // Verifies every bad environment of the table is refused the same way,
  // naming the key and the variable, never echoing a static secret.
  it('a bad environment: exit 2, one line naming the key and the variable', async () => {
    const jobs = [];
    for (const entry of table.environment) {
      for (const command of COMMANDS) {
        jobs.push(async () => {
          const c = newCase(`environment ${JSON.stringify(entry.set ?? {})} without ${entry.unset ?? []}`);
          const env = { ...table.base_environment, ...(entry.set ?? {}) };
          for (const name of entry.unset ?? []) delete env[name];
          const keys = baseKeys(c);
          const file = writeConfigFile(c, (entry.file ?? '') + renderYaml(keys));
          ++counts.runs;
          return checkBadInput({ c, args: [...command, '--config', file], env, files: ['config.yaml', 'out'],
                                 expect: { message: entry.message, prefix: entry.prefix, contains: entry.contains } });
        });
      }
    }
    counts.environment = table.environment.length;
    assert.deepEqual(await runAll(jobs), []);
  });

  // Verifies that ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED is not bad input
  // whatever it holds: "true" in any case turns the VPC endpoint on, any
  // other value turns it off (as the SDKs read it; docs/configuration.md),
  // for KMS and for STS, which follows KMS's region when nothing names its own.
  it('the VPC switch is never bad input', async () => {
    for (const [value, host] of [['TRUE', 'kms-vpc.cn-hangzhou.aliyuncs.com'], ['true', 'kms-vpc.cn-hangzhou.aliyuncs.com'],
                                 ['yes', 'kms.cn-hangzhou.aliyuncs.com'], ['1', 'kms.cn-hangzhou.aliyuncs.com'],
                                 ['garbage\u00e9', 'kms.cn-hangzhou.aliyuncs.com']]) {
      const c = newCase(`VPC ${value}`);
      const file = writeConfigFile(c, renderYaml(baseKeys(c)));
      const result = await run(['validate', '--config', file],
                               { env: { ...table.base_environment, ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED: value }, cwd: c.dir });
      assert.equal(result.code, 0, result.stderr);
      const sts = host.replace(/^kms/, 'sts');
      assert.match(result.stdout,
                   new RegExp(`KMS https://${host.replace(/\./g, '\\.')}, STS https://${sts.replace(/\./g, '\\.')}, output`), value);
      assert.deepEqual(listTree(c.dir), ['config.yaml', 'out']);
    }
  });

  // Verifies bad flags: exit 2, one line naming the flag (or the key a flag
  // overrides), nothing written.
  it('bad flags: exit 2, one line naming the flag, nothing written', async () => {
    const flagCases = [
      // [commands, extra args (CONFIG = the valid config), expected message or prefix]
      [COMMANDS, ['--config', 'CONFIG', '--log-level', 'verbose'],
       { message: 'log.level: must be one of debug, info, warn, error (from a flag)' }],
      [COMMANDS, ['--config', 'CONFIG', '--output-dir', 'relative/dir'],
       { message: 'output.directory: must be an absolute path (from a flag)' }],
      [COMMANDS, ['--config', 'CONFIG', '--output-dir='], { prefix: 'output.directory: ' }],
      [COMMANDS, ['--config', 'CONFIG', '--colour'], { message: '--colour: unknown flag' }],
      [COMMANDS, ['--config', 'CONFIG', '--config', 'CONFIG'], { message: '--config: given more than once' }],
      [COMMANDS, ['--config'], { message: '--config: needs a value' }],
      [COMMANDS, [], { message: '--config: required (a YAML or JSON file), or --config-env VAR' }],
      [COMMANDS, ['--config', 'CONFIG', 'extra'], { message: "unexpected argument 'extra'" }],
      [[['sync']], ['--config', 'CONFIG'], { message: 'sync: --once is required' }],
      [[['sync', '--once']], ['--config', 'CONFIG', '--timeout', '0s'], { prefix: '--timeout: ' }],
      [[['sync', '--once']], ['--config', 'CONFIG', '--timeout', 'soon'], { prefix: '--timeout: ' }],
      [[['run'], ['validate']], ['--config', 'CONFIG', '--once'], { message: '--once: unknown flag' }],
    ];
    const jobs = [];
    for (const [commands, extra, expect] of flagCases) {
      for (const command of commands) {
        jobs.push(async () => {
          const c = newCase(`flags ${extra.join(' ')}`);
          const file = writeConfigFile(c, renderYaml(baseKeys(c)));
          ++counts.runs;
          return checkBadInput({ c, args: [...command, ...extra.map((a) => (a === 'CONFIG' ? file : a))],
                                 env: table.base_environment, files: ['config.yaml', 'out'], expect });
        });
      }
    }
    counts.flags = flagCases.length;
    assert.deepEqual(await runAll(jobs), []);
  });

  // Verifies `--help` works on every command (anywhere among its flags, even
  // beside bad ones): exit 0, that command's usage on stdout, and that
  // `check`'s own bad flags are one line and exit 2.
  it('--help on every command, and check\'s bad flags', async () => {
    const commands = ['run', 'sync', 'validate', 'refresh', 'probe', 'check', 'version'];
    for (const command of commands) {
      for (const args of [[command, '--help'], [command, '--colour', '-h'], ['help', command]]) {
        const r = await runCredsync(args, { name: `help-${command}` });
        assert.equal(r.code, 0, `credsync ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
        assert.match(r.stdout, /^usage: credsync <command> \[flags\]\n/);
        assert.match(r.stdout, new RegExp(`^  ${command} `, 'm'), `credsync ${args.join(' ')}`);
        for (const other of commands.filter((c) => c !== command)) {
          assert.doesNotMatch(r.stdout, new RegExp(`^  ${other} `, 'm'), `credsync ${args.join(' ')} shows ${other}`);
        }
      }
    }
    const all = await runCredsync(['--help'], { name: 'help' });
    assert.equal(all.code, 0);
    for (const command of commands) assert.match(all.stdout, new RegExp(`^  ${command} `, 'm'));
    const unknown = await runCredsync(['frobnicate', '--help'], { name: 'help-unknown' });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^credsync: unknown command 'frobnicate'$/m);

    for (const [args, message] of [
      [['check', '--every', '0s'], /^credsync: --every: must be a duration such as 30s \(at most 1h\)$/],
      [['check', '--timeout', '2h'], /^credsync: --timeout: must be a duration such as 30s \(at most 1h\)$/],
      [['check', 'now'], /^credsync: unexpected argument 'now'$/],
      [['check', '--file='], /^credsync: --file: must not be empty$/],
    ]) {
      const r = await runCredsync(args, { name: 'check-flags' });
      assert.equal(r.code, 2, `credsync ${args.join(' ')}: exit ${r.code}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `credsync ${args.join(' ')}: ${r.stderr}`);
      assert.match(lines[0], message);
    }
    // Nothing listening: one line, exit 1 (not ready), never 0.
    const absent = await runCredsync(['check', '--socket', '/nonexistent/credsync.sock', '--timeout', '1s'],
                                     { name: 'check-absent' });
    assert.equal(absent.code, 1);
    assert.match(absent.stderr.trim(), /^credsync: check: /);
    assert.equal(absent.stderr.trim().split('\n').length, 1);
  });

  // Verifies bad config files (missing, a directory, too big, YAML syntax,
  // unknown and duplicate keys, several documents) the same way.
  it('bad config files: exit 2, one line, nothing written', async () => {
    const fileCases = [
      ['missing', null, { prefix: 'config file ', contains: 'No such file or directory' }],
      ['a directory', 'DIR', { prefix: 'config file ', contains: 'not a regular file' }],
      ['over 1 MiB', `# ${'x'.repeat(1 << 20)}\n${PROFILES}`, { prefix: 'config file ' }],
      ['YAML syntax', 'log: {level: info\n', { prefix: 'config: YAML syntax error at line ' }],
      ['JSON syntax', '{"log": {"level": "info"}\n "kms": {}}\n', { prefix: 'config: YAML syntax error at line ' }],
      ['unknown key', `identity:\n  rol_arn: x\n${PROFILES}`, { message: 'identity.rol_arn: unknown key (line 2)' }],
      ['duplicate key', `log:\n  level: info\n  level: debug\n${PROFILES}`, { message: 'log.level: duplicate key (line 3)' }],
      ['two documents', `${PROFILES}---\n${PROFILES}`, { message: 'config: must hold exactly one YAML document' }],
      ['not a mapping', 'just a string\n', { prefix: 'config: the document' }],
      ['no profiles', 'log: {level: info}\n', { prefix: 'profiles: ' }],
    ];
    const jobs = [];
    for (const [label, text, expect] of fileCases) {
      for (const command of COMMANDS) {
        jobs.push(async () => {
          const c = newCase(`file: ${label}`);
          let file = path.join(c.dir, 'config.yaml');
          if (text === 'DIR') file = c.out;
          else if (text !== null) fs.writeFileSync(file, text);
          ++counts.runs;
          return checkBadInput({ c, args: [...command, '--config', file], env: table.base_environment,
                                 expect });
        });
      }
    }
    counts.files = fileCases.length;
    assert.deepEqual(await runAll(jobs), []);
  });
});
