// What the podman end-to-end suites share (tests/e2e/podman/run.sh runs
// them): the podman CLI, a played pod's containers, and the adaptation of a
// Kubernetes pod spec to what podman 4.3's `kube play` can run.
//
// What adaptForPodman changes in a pod spec, because podman 4.3 cannot
// express it, and nothing else:
// 1. `hostNetwork: true` and no container `ports`: bridge networking needs
//    netavark, which bookworm's podman lacks, and port mappings need a
//    bridge. The host network is the namespace run.sh created.
// 2. `restartPolicy: OnFailure` instead of a Deployment's Always: with
//    Always, podman restarts a completed init container for ever.
// 3. A projected volume with a service-account token becomes a hostPath
//    directory holding a token the emulator minted for the pod's service
//    account (`tokenDir`): kube play has no projected tokens.
// 4. An emptyDir becomes a hostPath directory on a tmpfs the test mounts with
//    the kubelet's emptyDir mode (group fsGroup, setgid, 0777; mountTmpfs):
//    podman makes an emptyDir a disk volume owned by the first container's
//    user and ignores `medium: Memory`.
// 5. The pod's fsGroup is added to supplementalGroups: podman does not add it
//    to the containers' groups as the kubelet does.
// Probes are not run by podman 4.3 (its healthchecks need systemd timers):
// the tests call them themselves, where the kubelet would.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { until as pollUntil } from '../node/sidecar.mjs';

// What run.sh passes the suites: the two images it built, the prefix of
// every pod name (its cleanup's filter), a work directory it removes, and
// the log directory.
export const PODMAN_ENV = {
  image: process.env.CREDSYNC_PODMAN_IMAGE,
  appImage: process.env.CREDSYNC_PODMAN_APP_IMAGE,
  podPrefix: process.env.CREDSYNC_PODMAN_POD_PREFIX ?? 'credsync-e2e-podman',
  work: process.env.CREDSYNC_PODMAN_WORK,
  logDir: process.env.CREDSYNC_E2E_LOG_DIR,
};

export function podman(args, { allowFailure = false, timeoutMs = 120000 } = {}) {
  const r = spawnSync('podman', args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (!allowFailure && r.status !== 0) {
    throw new Error(`podman ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}${r.error?.message ?? ''}`);
  }
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

// The containers of a pod `kube play` named podName (podman names them
// <pod>-<container>).
export function playedPod(podName) {
  const containerName = (name) => `${podName}-${name}`;
  const logsOf = (name) => podman(['logs', containerName(name)], { allowFailure: true });
  return {
    containerName,
    logsOf,
    inspect: (name) => JSON.parse(podman(['inspect', containerName(name)]).stdout)[0],
    execIn: (name, command) => podman(['exec', containerName(name), ...command], { allowFailure: true, timeoutMs: 30000 }),
    // The JSON event lines (tests/e2e/podman/app/app.mjs) of a container.
    events: (name) => logsOf(name).stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)),
    // podman removes an init container once it has run: its exit code is in
    // the event log since `since` (seconds). Resolves {code}.
    initExit: (name, since) => {
      let died = '';
      return until(() => {
        died = podman(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1),
                       '--filter', 'event=died', '--format', '{{.Name}} {{.ContainerExitCode}}']).stdout;
        const line = died.split('\n').find((l) => l.startsWith(`${containerName(name)} `));
        return line ? { code: Number(line.split(' ')[1]) } : null;
      }, `${name} to finish`).catch((err) => {
        throw new Error(`${err.message}; died events since the play: ${JSON.stringify(died)}`);
      });
    },
    remove: () => podman(['pod', 'rm', '--force', '--time', '0', podName], { allowFailure: true }),
  };
}

export function httpGet(port, requestPath) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: requestPath, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 1 s (the probe timeout)')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}

// sidecar.mjs's until, at the pace of a container runtime: a minute, every 200 ms.
export const until = (check, what, timeoutMs = 60000) => pollUntil(check, what, timeoutMs, 200);

// A tmpfs at `dir` as the kubelet makes an emptyDir for a pod with an
// fsGroup: group fsGroup, setgid, 0777 (step 4).
export function mountEmptyDir(dir, fsGroup) {
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=16m,mode=2777,gid=${fsGroup}`, 'tmpfs', dir],
                            { encoding: 'utf8' });
  if (mounted.status !== 0) throw new Error(`mount tmpfs on ${dir}: ${mounted.stderr}`);
}

// The projected service-account token as a hostPath directory (step 3):
// `dir` holding a token the emulator minted for the pod's service account,
// audience sts.aliyuncs.com, readable by the containers' users.
export async function tokenDirectory(emu, dir, { namespace, serviceAccount }) {
  fs.mkdirSync(dir, { mode: 0o755 });
  await emu.admin('POST', '/admin/oidc/tokens', {
    namespace, service_account: serviceAccount, audience: 'sts.aliyuncs.com',
    ttl_seconds: 3600, file: path.join(dir, 'token'),
  });
  fs.chmodSync(path.join(dir, 'token'), 0o644);
  return dir;
}

export function unmountEmptyDir(dir) {
  spawnSync('umount', [dir]);
}

// Steps 1-5 of the header on `spec` (changed in place): the projected token
// volume becomes `tokenDir`, the emptyDir `volumeDir`.
export function adaptForPodman(spec, { tokenDir, volumeDir }) {
  spec.hostNetwork = true;                                          // 1
  spec.restartPolicy = 'OnFailure';                                 // 2
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) delete c.ports;
  spec.volumes = spec.volumes.map((v) => {
    if (v.projected?.sources?.some((s) => s.serviceAccountToken)) { // 3
      return { name: v.name, hostPath: { path: tokenDir, type: 'Directory' } };
    }
    if (v.emptyDir) {                                               // 4
      return { name: v.name, hostPath: { path: volumeDir, type: 'Directory' } };
    }
    return v;
  });
  spec.securityContext.supplementalGroups = [                       // 5
    ...(spec.securityContext.supplementalGroups ?? []), spec.securityContext.fsGroup];
  return spec;
}
