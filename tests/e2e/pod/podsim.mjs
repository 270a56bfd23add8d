// A pod simulator for the rendered Helm chart: it runs the containers of a
// rendered pod spec on this machine the way the kubelet would, closely
// enough to prove that the rendered configuration works.
//
//   const objects = renderChart({chart, release, namespace, values});
//   const deployment = findObject(objects, 'Deployment');
//   const pod = await startPod({objects, pod: podFromWorkload(deployment), ...});
//   await pod.waitReady();  pod.exec('credsync', [...]);  await pod.stop();
//
// What it does for a pod:
// - volumes are materialised in a temporary directory: a ConfigMap's (or
//   Secret's) keys as files, an emptyDir as a directory (a tmpfs when its
//   medium is Memory), a projected volume's sources (service-account tokens
//   minted by a callback, ConfigMaps, Secrets, downward API) as files, with
//   the kubelet's modes and fsGroup ownership;
// - each container runs in a mount namespace of its own
//   (`unshare --mount`), where every volumeMount is bind-mounted onto its
//   exact mountPath (a missing mount point is created inside an overlay of
//   its nearest existing ancestor, so nothing on the host changes), the
//   container's command is mapped from the binaries given (`images`), the
//   root filesystem is remounted read-only when readOnlyRootFilesystem says
//   so, and the command, args and env ($(VAR) expanded, fieldRef,
//   configMapKeyRef, secretKeyRef resolved) run under setpriv as
//   runAsUser/runAsGroup with the pod's fsGroup and supplementalGroups, no
//   capabilities and no_new_privs;
// - init containers run in order (a restartPolicy: Always one is a native
//   sidecar: started, then its startupProbe must pass before the next one),
//   then the regular containers start; probes (httpGet, exec, tcpSocket) are
//   run from here, and exec probes and `pod.exec` enter the container's
//   mount namespace with nsenter.
//
// Every container shares this process's network namespace: the caller runs
// the whole test inside a network namespace of its own (tests/e2e/pod/run.sh),
// so one pod at a time may bind its ports. Needs root, unshare, nsenter,
// setpriv, mount and overlayfs.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..', '..');

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// The uid/gid a container runs as when neither it nor the pod says: the
// image's USER is unknowable here; credsync's image uses the distroless
// "nonroot" user.
export const DEFAULT_IMAGE_UID = 65532;

// Every child process this module started and has not reaped.
const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// ---------------------------------------------------------------- rendering

// `scripts/helm.sh template RELEASE CHART --namespace NS -f VALUES [extra]`;
// returns the rendered objects (every YAML document that is not empty).
export function renderChart({ chart, release, namespace, values = {}, workDir, extraArgs = [] }) {
  const valuesFile = path.join(workDir, `values-${release}.yaml`);
  fs.writeFileSync(valuesFile, YAML.stringify(values));
  const args = ['template', release, chart, '--namespace', namespace, '-f', valuesFile, ...extraArgs];
  const result = spawnSync(path.join(REPO, 'scripts', 'helm.sh'), args,
                           { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0) {
    throw new Error(`helm ${args.join(' ')} failed (${result.status ?? result.signal}):\n` +
                    `${result.stderr}${result.error ? result.error.message : ''}`);
  }
  fs.writeFileSync(path.join(workDir, `rendered-${release}.yaml`), result.stdout);
  return parseManifests(result.stdout);
}

export function parseManifests(text) {
  const objects = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`rendered YAML: ${doc.errors[0].message}`);
    const object = doc.toJS();
    if (object && typeof object === 'object') objects.push(object);
  }
  return objects;
}

// The one object of `kind` (optionally accepted by `filter`); throws when
// there is none or more than one.
export function findObject(objects, kind, filter = () => true) {
  const found = objects.filter((o) => o.kind === kind && filter(o));
  if (found.length !== 1) {
    throw new Error(`want exactly one rendered ${kind}, found ${found.length}: ` +
                    `${found.map((o) => o.metadata?.name).join(', ')}`);
  }
  return found[0];
}

export function isHelmTest(object) {
  const hook = object.metadata?.annotations?.['helm.sh/hook'] ?? '';
  return hook.split(',').map((s) => s.trim()).some((h) => h === 'test' || h === 'test-success');
}

// A Pod-like {metadata, spec} from a Deployment/StatefulSet/Job/Pod.
export function podFromWorkload(object) {
  if (object.kind === 'Pod') return { metadata: object.metadata ?? {}, spec: object.spec };
  const template = object.spec?.template ?? object.spec?.jobTemplate?.spec?.template;
  if (!template) throw new Error(`${object.kind} ${object.metadata?.name} has no pod template`);
  return { metadata: { ...template.metadata, name: object.metadata?.name }, spec: template.spec };
}

export function allContainers(spec) {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

export function findContainer(spec, name) {
  const c = allContainers(spec).find((x) => x.name === name);
  if (!c) {
    throw new Error(`the pod has no container named ${name} (it has ${
      allContainers(spec).map((x) => x.name).join(', ')})`);
  }
  return c;
}

// ---------------------------------------------------------------- helpers

function run(command, args, what = command) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${what}: ${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ` +
                    `${result.stderr}${result.error ? result.error.message : ''}`);
  }
  return result.stdout;
}

function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

function tail(file, maxBytes = 16384) {
  try {
    const data = fs.readFileSync(file);
    return data.subarray(Math.max(0, data.length - maxBytes)).toString('utf8');
  } catch (err) {
    return `(cannot read ${file}: ${err.message})`;
  }
}

// Kubernetes quantities, for sizeLimit: "1Mi", "64M", "1000".
function quantityBytes(q) {
  const m = /^(\d+(?:\.\d+)?)([KMGTPE]i?|k|m)?$/.exec(String(q));
  if (!m) throw new Error(`cannot parse quantity ${q}`);
  const units = { k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
                  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6,
                  m: 1e-3 };
  return Math.ceil(Number(m[1]) * (m[2] ? units[m[2]] : 1));
}

// $(VAR) expansion as the kubelet does it for env values, command and args:
// $$ escapes, an undefined reference stays as written.
export function expandVars(text, vars) {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '$') { out += '$'; i++; continue; }
    if (text[i] === '$' && text[i + 1] === '(') {
      const end = text.indexOf(')', i + 2);
      if (end > 0) {
        const name = text.slice(i + 2, end);
        if (Object.prototype.hasOwnProperty.call(vars, name)) {
          out += vars[name];
          i = end;
          continue;
        }
      }
    }
    out += text[i];
  }
  return out;
}

// The kubelet's SetVolumeOwnership: group fsGroup, group read (and write
// unless read-only) on files, group rwx/r-x plus setgid on directories.
function applyFsGroup(dir, fsGroup, readOnly) {
  if (fsGroup === undefined || fsGroup === null) return;
  const walk = (p) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    fs.chownSync(p, st.uid, fsGroup);
    let mask = readOnly ? 0o440 : 0o660;
    if (st.isDirectory()) mask |= 0o110 | 0o2000;
    fs.chmodSync(p, (st.mode & 0o7777) | mask);
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) walk(path.join(p, name));
  };
  walk(dir);
}

function writeKeyFile(dir, relPath, content, mode) {
  const file = path.join(dir, relPath);
  if (!file.startsWith(dir + path.sep)) throw new Error(`volume item path ${relPath} escapes its volume`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  fs.chmodSync(file, mode);
}

// The directories of a pod simulation suite: where each process's output
// goes (CREDSYNC_E2E_LOG_DIR, else a temporary one) and a fresh work
// directory (volumes, scripts, overlays) the pods' users can traverse.
export function suiteDirectories(workPrefix) {
  const logDir = process.env.CREDSYNC_E2E_LOG_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'credsync-pod-logs-'));
  fs.mkdirSync(logDir, { recursive: true });
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), workPrefix));
  fs.chmodSync(workDir, 0o711);
  return { logDir, workDir };
}

// startPod's mintToken, by credsync-emulator standing in for the cluster's
// token issuer (tests/e2e/node/emulator.mjs).
export async function mintTokenWith(emu, { audience, expirationSeconds, file, serviceAccount, namespace }) {
  await emu.admin('POST', '/admin/oidc/tokens', {
    namespace, service_account: serviceAccount, audience, ttl_seconds: expirationSeconds, file,
  });
}

// ---------------------------------------------------------------- the pod

// Starts a pod. Options:
//   objects      every rendered object (ConfigMaps and Secrets are looked up here)
//   pod          {metadata, spec} (podFromWorkload)
//   name         the pod's name (metadata.name; POD_NAME)
//   namespace    its namespace
//   workDir      a directory for volumes, scripts and overlays
//   logDir       where each container's output goes (<pod>-<container>.log)
//   images       {containerPath: hostFile}: binaries bind-mounted into every
//                container, e.g. {'/usr/local/bin/credsync': CREDSYNC_BIN}
//   mintToken    async ({audience, expirationSeconds, file, serviceAccount,
//                namespace}) => writes a service-account token to `file`
//   runContainer (container) => bool: whether to run a regular container
//                (default: all); a skipped one is reported in pod.skipped
//   afterStartup async (pod, container) => void: called the moment a
//                container's startupProbe has passed (before anything else)
//   afterInit    async (pod) => void: called once the init containers are
//                done (native sidecars started), before the regular ones
//   log          (line) => void
export async function startPod(options) {
  const pod = new Pod(options);
  try {
    await pod.start();
  } catch (err) {
    await pod.stop().catch(() => {});
    throw new Error(`${err.message}\n${pod.describeLogs()}`, { cause: err });
  }
  return pod;
}

export class Pod {
  constructor({ objects, pod, name, namespace, workDir, logDir, images = {}, mintToken,
                runContainer = () => true, afterInit = async () => {},
                afterStartup = async () => {}, log = () => {},
                probeHost = '127.0.0.1',
                ip = '127.0.0.1', nodeName = 'podsim-node' }) {
    this.objects = objects;
    this.metadata = { ...pod.metadata, name, namespace };
    this.spec = pod.spec;
    this.name = name;
    this.namespace = namespace;
    this.dir = fs.mkdtempSync(path.join(workDir, `pod-${name}-`));
    fs.chmodSync(this.dir, 0o711);
    this.logDir = logDir;
    fs.mkdirSync(logDir, { recursive: true });
    this.images = images;
    this.mintToken = mintToken;
    this.runContainerFilter = runContainer;
    this.afterInit = afterInit;
    this.afterStartup = afterStartup;
    this.log = log;
    this.probeHost = probeHost;
    this.ip = ip;
    this.nodeName = nodeName;
    this.uid = `0000${Date.now().toString(16)}`.slice(-8) + '-5e1d-4c0d-9d00-000000000000';
    this.volumes = new Map();       // name -> {dir, readOnlyVolume}
    this.mounts = [];               // tmpfs mounts made here, to unmount at stop
    this.containers = new Map();    // name -> ContainerProcess
    this.skipped = [];
    this.sidecars = [];             // native sidecars, in start order
    this.stopped = false;
  }

  podSecurity() {
    return this.spec.securityContext ?? {};
  }

  // ----- volumes

  async materialiseVolumes() {
    const fsGroup = this.podSecurity().fsGroup;
    for (const volume of this.spec.volumes ?? []) {
      const dir = path.join(this.dir, 'volumes', volume.name);
      fs.mkdirSync(dir, { recursive: true });
      let readOnlyVolume = true;
      if (volume.configMap || volume.secret) {
        this.writeSource(dir, volume.configMap ?? volume.secret, volume.configMap ? 'ConfigMap' : 'Secret',
                         (volume.configMap ?? volume.secret).defaultMode ?? 0o644);
      } else if (volume.emptyDir) {
        readOnlyVolume = false;
        if (volume.emptyDir.medium === 'Memory') {
          const opts = ['mode=0777'];
          if (volume.emptyDir.sizeLimit) opts.push(`size=${quantityBytes(volume.emptyDir.sizeLimit)}`);
          run('mount', ['-t', 'tmpfs', '-o', opts.join(','), `podsim-${volume.name}`, dir], 'emptyDir');
          this.mounts.push(dir);
        } else if (volume.emptyDir.medium) {
          throw new Error(`volume ${volume.name}: emptyDir medium ${volume.emptyDir.medium} is not simulated`);
        }
        fs.chmodSync(dir, 0o777);
      } else if (volume.projected) {
        const defaultMode = volume.projected.defaultMode ?? 0o644;
        for (const source of volume.projected.sources ?? []) {
          if (source.serviceAccountToken) {
            const sat = source.serviceAccountToken;
            if (!this.mintToken) throw new Error(`volume ${volume.name}: no mintToken for a serviceAccountToken`);
            const file = path.join(dir, sat.path);
            fs.mkdirSync(path.dirname(file), { recursive: true });
            await this.mintToken({
              audience: sat.audience, expirationSeconds: sat.expirationSeconds ?? 3600, file,
              serviceAccount: this.spec.serviceAccountName ?? 'default', namespace: this.namespace,
            });
            if (!fs.existsSync(file)) throw new Error(`volume ${volume.name}: mintToken wrote no ${file}`);
            fs.chmodSync(file, defaultMode);
          } else if (source.configMap || source.secret) {
            this.writeSource(dir, source.configMap ?? source.secret, source.configMap ? 'ConfigMap' : 'Secret',
                             defaultMode);
          } else if (source.downwardAPI) {
            this.writeDownward(dir, source.downwardAPI.items ?? [], defaultMode);
          } else {
            throw new Error(`volume ${volume.name}: projected source ${Object.keys(source)} is not simulated`);
          }
        }
      } else if (volume.downwardAPI) {
        this.writeDownward(dir, volume.downwardAPI.items ?? [], volume.downwardAPI.defaultMode ?? 0o644);
      } else {
        throw new Error(`volume ${volume.name}: type ${Object.keys(volume).filter((k) => k !== 'name')} ` +
                        'is not simulated');
      }
      if (readOnlyVolume) fs.chmodSync(dir, 0o755);
      applyFsGroup(dir, fsGroup, readOnlyVolume);
      this.volumes.set(volume.name, { dir, readOnlyVolume });
    }
  }

  lookup(kind, name) {
    const found = this.objects.find((o) => o.kind === kind && o.metadata?.name === name);
    return found;
  }

  dataOf(kind, name, optional) {
    const object = this.lookup(kind, name);
    if (!object) {
      if (optional) return null;
      throw new Error(`the pod refers to ${kind} ${name}, which the chart does not render`);
    }
    const data = {};
    if (kind === 'Secret') {
      for (const [k, v] of Object.entries(object.data ?? {})) data[k] = Buffer.from(v, 'base64');
      for (const [k, v] of Object.entries(object.stringData ?? {})) data[k] = Buffer.from(v);
    } else {
      for (const [k, v] of Object.entries(object.data ?? {})) data[k] = Buffer.from(v);
      for (const [k, v] of Object.entries(object.binaryData ?? {})) data[k] = Buffer.from(v, 'base64');
    }
    return data;
  }

  writeSource(dir, ref, kind, defaultMode) {
    const name = kind === 'Secret' ? (ref.secretName ?? ref.name) : ref.name;
    const data = this.dataOf(kind, name, ref.optional);
    if (!data) return;
    if (ref.items) {
      for (const item of ref.items) {
        if (!(item.key in data)) {
          if (ref.optional) continue;
          throw new Error(`${kind} ${name} has no key ${item.key}`);
        }
        writeKeyFile(dir, item.path, data[item.key], item.mode ?? defaultMode);
      }
    } else {
      for (const [key, value] of Object.entries(data)) writeKeyFile(dir, key, value, defaultMode);
    }
  }

  fieldValue(fieldPath) {
    const labels = this.metadata.labels ?? {};
    const annotations = this.metadata.annotations ?? {};
    let m;
    if ((m = /^metadata\.labels\['(.+)'\]$/.exec(fieldPath))) return labels[m[1]] ?? '';
    if ((m = /^metadata\.annotations\['(.+)'\]$/.exec(fieldPath))) return annotations[m[1]] ?? '';
    switch (fieldPath) {
      case 'metadata.name': return this.name;
      case 'metadata.namespace': return this.namespace;
      case 'metadata.uid': return this.uid;
      case 'metadata.labels': return Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join('\n');
      case 'metadata.annotations':
        return Object.entries(annotations).map(([k, v]) => `${k}="${v}"`).join('\n');
      case 'spec.serviceAccountName': return this.spec.serviceAccountName ?? 'default';
      case 'spec.nodeName': return this.nodeName;
      case 'status.podIP': case 'status.hostIP': return this.ip;
      case 'status.podIPs': case 'status.hostIPs': return this.ip;
      default: throw new Error(`fieldRef ${fieldPath} is not simulated`);
    }
  }

  resourceValue(container, ref) {
    const [kind, resource] = ref.resource.split('.');
    const value = container?.resources?.[kind]?.[resource];
    if (value === undefined) return resource === 'cpu' ? '1' : String(8 << 30);
    const divisor = ref.divisor ? quantityBytes(ref.divisor) : 1;
    if (resource === 'cpu') return String(Math.ceil(quantityBytes(value) / divisor));
    return String(Math.ceil(quantityBytes(value) / divisor));
  }

  writeDownward(dir, items, defaultMode) {
    for (const item of items) {
      let value;
      if (item.fieldRef) value = this.fieldValue(item.fieldRef.fieldPath);
      else if (item.resourceFieldRef) {
        const c = allContainers(this.spec).find((x) => x.name === item.resourceFieldRef.containerName);
        value = this.resourceValue(c, item.resourceFieldRef);
      } else throw new Error(`downwardAPI item ${item.path} is not simulated`);
      writeKeyFile(dir, item.path, value, item.mode ?? defaultMode);
    }
  }

  // ----- containers

  // The container's environment as the kubelet builds it.
  containerEnv(container) {
    const env = {};
    for (const from of container.envFrom ?? []) {
      const ref = from.configMapRef ?? from.secretRef;
      const data = this.dataOf(from.configMapRef ? 'ConfigMap' : 'Secret', ref.name, ref.optional);
      for (const [k, v] of Object.entries(data ?? {})) env[(from.prefix ?? '') + k] = v.toString('utf8');
    }
    for (const e of container.env ?? []) {
      if (e.valueFrom) {
        const vf = e.valueFrom;
        if (vf.fieldRef) env[e.name] = this.fieldValue(vf.fieldRef.fieldPath);
        else if (vf.resourceFieldRef) {
          const c = vf.resourceFieldRef.containerName
            ? allContainers(this.spec).find((x) => x.name === vf.resourceFieldRef.containerName) : container;
          env[e.name] = this.resourceValue(c, vf.resourceFieldRef);
        } else if (vf.configMapKeyRef || vf.secretKeyRef) {
          const ref = vf.configMapKeyRef ?? vf.secretKeyRef;
          const data = this.dataOf(vf.configMapKeyRef ? 'ConfigMap' : 'Secret', ref.name, ref.optional);
          if (data && ref.key in data) env[e.name] = data[ref.key].toString('utf8');
          else if (!ref.optional) throw new Error(`env ${e.name}: no key ${ref.key} in ${ref.name}`);
        } else {
          throw new Error(`env ${e.name}: valueFrom ${Object.keys(vf)} is not simulated`);
        }
      } else {
        env[e.name] = expandVars(String(e.value ?? ''), env);
      }
    }
    return env;
  }

  identity(container) {
    const pod = this.podSecurity();
    const sc = container.securityContext ?? {};
    const uid = sc.runAsUser ?? pod.runAsUser ?? DEFAULT_IMAGE_UID;
    const gid = sc.runAsGroup ?? pod.runAsGroup ?? uid;
    const nonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
    if (nonRoot && uid === 0) throw new Error(`container ${container.name}: runAsNonRoot with uid 0`);
    const groups = new Set();
    if (pod.fsGroup !== undefined) groups.add(pod.fsGroup);
    for (const g of pod.supplementalGroups ?? []) groups.add(g);
    const dropAll = (sc.capabilities?.drop ?? []).some((c) => String(c).toUpperCase() === 'ALL');
    return {
      uid, gid, groups: [...groups],
      noNewPrivs: sc.allowPrivilegeEscalation === false || dropAll,
      dropAll,
      readOnlyRoot: sc.readOnlyRootFilesystem === true,
    };
  }

  // The setpriv + env prefix that runs `argv` as the container's user
  // with exactly its environment.
  processCommand(container, argv, env) {
    const id = this.identity(container);
    const setpriv = ['/usr/bin/setpriv', `--reuid=${id.uid}`, `--regid=${id.gid}`,
      id.groups.length ? `--groups=${id.groups.join(',')}` : '--clear-groups'];
    if (id.noNewPrivs) setpriv.push('--no-new-privs');
    if (id.dropAll) setpriv.push('--inh-caps=-all', '--bounding-set=-all');
    const fullEnv = { PATH: DEFAULT_PATH, HOSTNAME: this.name, ...env };
    if (id.uid !== 0 && !('HOME' in fullEnv)) fullEnv.HOME = '/';
    return [...setpriv, '--', '/usr/bin/env', '-i',
            ...Object.entries(fullEnv).map(([k, v]) => `${k}=${v}`), ...argv];
  }

  // The command line of a container: command (or the image's entrypoint,
  // which is unknown here) + args, $(VAR)-expanded.
  argv(container, env) {
    if (!container.command?.length) return null;
    return [...container.command, ...(container.args ?? [])].map((a) => expandVars(String(a), env));
  }

  // The mount namespace set-up of a container as a shell script; `mounts`
  // are its volumeMounts (resolved against this pod's volumes) plus images.
  mountScript(container, ovDir) {
    const id = this.identity(container);
    const binds = [];
    for (const vm of container.volumeMounts ?? []) {
      const volume = this.volumes.get(vm.name);
      if (!volume) throw new Error(`container ${container.name} mounts volume ${vm.name}, which the pod lacks`);
      let source = volume.dir;
      let kind = 'dir';
      if (vm.subPath) {
        source = path.join(volume.dir, vm.subPath);
        if (!fs.existsSync(source)) fs.mkdirSync(source, { recursive: true });
        kind = fs.statSync(source).isDirectory() ? 'dir' : 'file';
      }
      if (vm.mountPropagation && vm.mountPropagation !== 'None') {
        throw new Error(`container ${container.name}: mountPropagation ${vm.mountPropagation} is not simulated`);
      }
      binds.push({ source, target: vm.mountPath, kind, ro: vm.readOnly === true || volume.readOnlyVolume });
    }
    for (const [target, source] of Object.entries(this.images)) {
      binds.push({ source, target, kind: 'file', ro: true });
    }
    // Parents before children, as the runtime mounts them.
    binds.sort((a, b) => a.target.split('/').length - b.target.split('/').length);

    const lines = [
      '#!/bin/sh',
      '# Generated by tests/e2e/pod/podsim.mjs: the mount namespace of one container.',
      'set -eu',
      `OV=${shq(ovDir)}`,
      'mount -t tmpfs -o mode=0700 podsim-overlays "$OV"',
      'overlaid=""',
      'n=0',
      '# Make a mount point exist without changing the host: overlay the',
      '# nearest existing ancestor (in this namespace only) and create it there.',
      'ensure() {',
      '  t=$1; kind=$2',
      '  [ -e "$t" ] && return 0',
      '  a=$(dirname "$t")',
      '  while [ ! -e "$a" ]; do a=$(dirname "$a"); done',
      '  a=$(readlink -f "$a")',
      '  # A directory made inside an overlay made here (not a mount on it) is',
      '  # writable already: overlaying it again would hide the mounts below it',
      '  # (sibling mount points such as /etc/x/a and /etc/x/b).',
      '  writable=""',
      '  case " $overlaid " in *" $a "*) writable=1 ;; esac',
      '  if [ -z "$writable" ] && ! mountpoint -q "$a"; then',
      '    for o in $overlaid; do case "$a/" in "$o"/*) writable=1 ;; esac; done',
      '  fi',
      '  if [ -z "$writable" ]; then',
      '    n=$((n+1)); mkdir -p "$OV/$n/upper" "$OV/$n/work"',
      '    mount -t overlay "podsim-overlay-$n" -o "lowerdir=$a,upperdir=$OV/$n/upper,workdir=$OV/$n/work" "$a"',
      '    overlaid="$overlaid $a"',
      '  fi',
      '  if [ "$kind" = dir ]; then mkdir -p "$t"; else mkdir -p "$(dirname "$t")"; : > "$t"; fi',
      '}',
      'bind() {',
      '  ensure "$2" "$3"',
      '  mount --bind "$1" "$2"',
      '  if [ "$4" = ro ]; then mount -o remount,bind,ro "$2"; fi',
      '}',
    ];
    for (const b of binds) {
      lines.push(`bind ${shq(b.source)} ${shq(b.target)} ${b.kind} ${b.ro ? 'ro' : 'rw'}`);
    }
    if (id.readOnlyRoot) {
      lines.push('# readOnlyRootFilesystem: the root and the overlays made above, read-only here.');
      lines.push('mount -o remount,bind,ro /');
      lines.push('for d in $overlaid; do mount -o remount,bind,ro "$d"; done');
    }
    lines.push(`cd ${shq(container.workingDir ?? '/')}`);
    return lines.join('\n') + '\n';
  }

  // Starts `container` in a new mount namespace; resolves a ContainerProcess.
  launch(container, { name = container.name, env = this.containerEnv(container) } = {}) {
    const argv = this.argv(container, env);
    if (!argv) throw new Error(`container ${container.name} has no command (the image's entrypoint is unknown here)`);
    const ovDir = path.join(this.dir, `overlays-${name}`);
    fs.mkdirSync(ovDir, { recursive: true });
    const script = this.mountScript(container, ovDir) +
      `exec ${this.processCommand(container, argv, env).map(shq).join(' ')}\n`;
    const scriptFile = path.join(this.dir, `container-${name}.sh`);
    fs.writeFileSync(scriptFile, script, { mode: 0o700 });
    const logFile = path.join(this.logDir, `${this.name}-${name}.log`);
    const fd = fs.openSync(logFile, 'a');
    this.log(`pod ${this.name}: start container ${name}: ${argv.join(' ')} ` +
             `(uid ${this.identity(container).uid}; script ${scriptFile})`);
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', scriptFile],
                        { stdio: ['ignore', fd, fd], env: { PATH: DEFAULT_PATH } });
    fs.closeSync(fd);
    const proc = new ContainerProcess(this, container, name, child, logFile, env);
    this.containers.set(name, proc);
    return proc;
  }

  // ----- probes

  probePort(container, port) {
    if (typeof port === 'number' || /^\d+$/.test(String(port))) return Number(port);
    const p = (container.ports ?? []).find((x) => x.name === port);
    if (!p) throw new Error(`container ${container.name}: probe port ${port} is not one of its named ports`);
    return p.containerPort;
  }

  // One probe attempt: {ok, detail}.
  async probeOnce(proc, probe) {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    if (probe.httpGet) {
      const g = probe.httpGet;
      const port = this.probePort(proc.container, g.port);
      const lib = (g.scheme ?? 'HTTP').toUpperCase() === 'HTTPS' ? https : http;
      const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
      return await new Promise((resolve) => {
        const req = lib.request({ host: g.host ?? this.probeHost, port, path: g.path ?? '/', method: 'GET',
                                  headers, timeout: timeoutMs, agent: false, rejectUnauthorized: false },
        (res) => {
          let body = '';
          res.on('data', (c) => { body += c; });
          res.on('end', () => resolve({ ok: res.statusCode >= 200 && res.statusCode < 400,
                                        status: res.statusCode, detail: `HTTP ${res.statusCode} ${body.trim()}`,
                                        port, path: g.path }));
          res.on('error', (err) => resolve({ ok: false, detail: err.message }));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (err) => resolve({ ok: false, detail: err.message, port, path: g.path }));
        req.end();
      });
    }
    if (probe.tcpSocket) {
      const port = this.probePort(proc.container, probe.tcpSocket.port);
      return await new Promise((resolve) => {
        const s = net.connect({ host: probe.tcpSocket.host ?? this.probeHost, port, timeout: timeoutMs });
        s.on('connect', () => { s.destroy(); resolve({ ok: true, detail: 'connected', port }); });
        s.on('timeout', () => { s.destroy(); resolve({ ok: false, detail: 'timeout', port }); });
        s.on('error', (err) => resolve({ ok: false, detail: err.message, port }));
      });
    }
    if (probe.exec) {
      const r = await proc.exec(probe.exec.command, { timeoutMs: Math.max(timeoutMs, 10000) });
      return { ok: r.code === 0, detail: `exit ${r.code ?? r.signal}: ${r.output.trim()}` };
    }
    throw new Error(`probe ${Object.keys(probe)} is not simulated`);
  }

  // Polls `probe` until it succeeds, within the time the kubelet would
  // allow (initialDelaySeconds + periodSeconds × failureThreshold, at least
  // `minMs`), polling faster than periodSeconds.
  async waitProbe(proc, probe, what, minMs = 5000) {
    const budget = Math.max(minMs, ((probe.initialDelaySeconds ?? 0) +
                                    (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3)) * 1000);
    const deadline = Date.now() + budget;
    let last;
    for (;;) {
      if (!proc.alive()) {
        throw new Error(`container ${proc.name} exited (${JSON.stringify(proc.exit)}) before its ${what} passed`);
      }
      last = await this.probeOnce(proc, probe);
      if (last.ok) return last;
      if (Date.now() > deadline) {
        throw new Error(`${what} of ${proc.name} did not pass within ${budget} ms: ${last.detail}`);
      }
      await delay(200);
    }
  }

  // ----- lifecycle

  // Every container port of the pod must be free in this network namespace
  // (another simulated pod still running would answer this pod's probes).
  async assertPortsFree() {
    for (const c of allContainers(this.spec)) {
      for (const p of c.ports ?? []) {
        if ((p.protocol ?? 'TCP') !== 'TCP') continue;
        await new Promise((resolve, reject) => {
          const server = net.createServer();
          server.once('error', (err) => reject(new Error(
            `pod ${this.name}: port ${p.containerPort} (${c.name}/${p.name ?? ''}) is taken: ${err.message}`)));
          server.listen({ host: '0.0.0.0', port: p.containerPort, exclusive: true }, () => server.close(resolve));
        });
      }
    }
  }

  async start() {
    await this.assertPortsFree();
    await this.materialiseVolumes();
    for (const c of this.spec.initContainers ?? []) {
      if (c.restartPolicy === 'Always') {
        const proc = this.launch(c);
        this.sidecars.push(proc);
        if (c.startupProbe) {
          await this.waitProbe(proc, c.startupProbe, 'startupProbe');
          await this.afterStartup(this, proc);
        } else {
          await delay(100);
        }
        if (!proc.alive()) throw new Error(`native sidecar ${c.name} exited: ${JSON.stringify(proc.exit)}`);
      } else {
        const proc = this.launch(c);
        const exit = await proc.wait(120000);
        if (exit.code !== 0) {
          throw new Error(`init container ${c.name} exited ${exit.code ?? exit.signal}:\n${proc.output()}`);
        }
      }
    }
    await this.afterInit(this);
    for (const c of this.spec.containers ?? []) {
      if (!this.runContainerFilter(c) || !c.command?.length) {
        this.skipped.push(c.name);
        this.log(`pod ${this.name}: container ${c.name} not run ` +
                 `(${c.command?.length ? 'excluded by the test' : 'no command: its image entrypoint is unknown'})`);
        continue;
      }
      this.launch(c);
    }
    for (const c of this.spec.containers ?? []) {
      const proc = this.containers.get(c.name);
      if (proc && c.startupProbe) {
        await this.waitProbe(proc, c.startupProbe, 'startupProbe');
        await this.afterStartup(this, proc);
      }
    }
  }

  // Every started container's readinessProbe passes.
  async waitReady() {
    const results = {};
    for (const proc of this.containers.values()) {
      const probe = proc.container.readinessProbe;
      if (probe && proc.alive()) results[proc.name] = await this.waitProbe(proc, probe, 'readinessProbe');
    }
    return results;
  }

  // Waits until each regular container that was started has exited (a pod
  // with restartPolicy Never); resolves {name: {code, signal}}.
  async waitRegularContainers(timeoutMs = 120000) {
    const exits = {};
    for (const c of this.spec.containers ?? []) {
      const proc = this.containers.get(c.name);
      if (proc) exits[c.name] = await proc.wait(timeoutMs);
    }
    return exits;
  }

  container(name) {
    const proc = this.containers.get(name);
    if (!proc) throw new Error(`pod ${this.name} has no running container ${name}`);
    return proc;
  }

  // A volume's directory on the host (as this process sees it).
  volumeDir(name) {
    const v = this.volumes.get(name);
    if (!v) throw new Error(`pod ${this.name} has no volume ${name}`);
    return v.dir;
  }

  // The host directory behind `mountPath` in `containerName`.
  hostPath(containerName, mountPath) {
    const c = findContainer(this.spec, containerName);
    const vm = (c.volumeMounts ?? []).filter((m) => mountPath === m.mountPath ||
                                               mountPath.startsWith(m.mountPath.replace(/\/$/, '') + '/'))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    if (!vm) throw new Error(`container ${containerName} mounts nothing at ${mountPath}`);
    const rest = path.relative(vm.mountPath, mountPath);
    return path.join(this.volumeDir(vm.name), vm.subPath ?? '', rest);
  }

  // Adds `container` (e.g. another pod's check container) to this pod: its
  // volumeMounts are resolved by mountPath against `like`'s mounts, so it
  // sees this pod's volumes where `like` does.
  graft(container, like) {
    const likeSpec = findContainer(this.spec, like);
    const volumeMounts = (container.volumeMounts ?? []).map((vm) => {
      const same = (likeSpec.volumeMounts ?? []).find((m) => m.mountPath === vm.mountPath);
      if (!same) {
        throw new Error(`container ${container.name} mounts ${vm.mountPath}, which ${like} does not mount`);
      }
      return { ...vm, name: same.name, subPath: same.subPath };
    });
    return this.launch({ ...container, volumeMounts }, { name: `${container.name}-grafted` });
  }

  describeLogs(maxBytes = 8192) {
    const parts = [];
    for (const proc of this.containers.values()) {
      parts.push(`--- ${proc.logFile} (${proc.alive() ? 'running' : `exit ${JSON.stringify(proc.exit)}`})\n` +
                 tail(proc.logFile, maxBytes));
    }
    return parts.join('\n');
  }

  // SIGTERM to regular containers, then to sidecars in reverse start
  // order (as the kubelet does), SIGKILL after the grace period; unmounts
  // the tmpfs volumes. Resolves {name: exit}.
  async stop(graceMs = 10000) {
    if (this.stopped) return this.exits;
    this.stopped = true;
    const exits = {};
    const sidecarNames = new Set(this.sidecars.map((p) => p.name));
    const regular = [...this.containers.values()].filter((p) => !sidecarNames.has(p.name));
    await Promise.all(regular.map(async (p) => { exits[p.name] = await p.stop(graceMs); }));
    for (const p of [...this.sidecars].reverse()) exits[p.name] = await p.stop(graceMs);
    for (const dir of this.mounts.reverse()) {
      spawnSync('umount', [dir]);
    }
    this.exits = exits;
    return exits;
  }
}

class ContainerProcess {
  constructor(pod, container, name, child, logFile, env) {
    this.pod = pod;
    this.container = container;
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    this.logFile = logFile;
    this.env = env;
    this.exit = null;
    running.add(child);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        running.delete(child);
        resolve(this.exit);
      });
      child.on('error', (err) => {
        this.exit = { code: null, signal: null, error: err.message };
        running.delete(child);
        resolve(this.exit);
      });
    });
  }

  alive() {
    return this.exit === null;
  }

  output(maxBytes) {
    return tail(this.logFile, maxBytes);
  }

  async wait(timeoutMs = 60000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`container ${this.name} still running after ${timeoutMs} ms:\n` +
                                                 this.output())), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // Runs argv inside this container's mount namespace, as its user, with its
  // environment (like `kubectl exec`): {code, signal, output}.
  async exec(argv, { timeoutMs = 30000, container = this.container, env = this.env } = {}) {
    if (!this.alive()) throw new Error(`container ${this.name} is not running`);
    const cmd = ['nsenter', `--target=${this.pid}`, '--mount', '--wd=/', '--',
                 ...this.pod.processCommand(container, argv.map((a) => expandVars(String(a), env)), env)];
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: DEFAULT_PATH } });
    running.add(child);
    let output = '';
    child.stdout.on('data', (c) => { output += c; });
    child.stderr.on('data', (c) => { output += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const { code, signal } = await new Promise((resolve) => {
      child.on('exit', (c, s) => resolve({ code: c, signal: s }));
      child.on('error', (err) => resolve({ code: null, signal: null, error: err }));
    });
    clearTimeout(timer);
    running.delete(child);
    fs.appendFileSync(path.join(this.pod.logDir, `${this.pod.name}-${this.name}.exec.log`),
                      `$ ${argv.join(' ')}\n${output}(exit ${code ?? signal})\n`);
    return { code, signal, output };
  }

  async stop(graceMs = 10000) {
    if (this.alive()) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exit;
  }
}
