// The fleet simulation: N credsync sidecars (the real schedule, backoff,
// jitter, single flight, session cache, signing and parsing, on one
// simulated clock, without sockets) against one account's STS and KMS
// quotas. Prints, for N = 1,000 and 10,000, a rollout for each
// refresh.startup_jitter, then an hour of steady state, a scheduled
// rotation and an emergency Refresh storm (bench/fleet/main.cc). A
// benchmark, not a test: tests/unit/fleet asserts the behaviour at small N.
//
//   bench/run fleet             (about a minute on two cores)
//   bench/run --smoke fleet     (40 pods, for CI)
//
// Extra flags for the simulator go in FLEET_ARGS, e.g.
// FLEET_ARGS='--sts-per-minute 300 --kms-qps 50 --throttled-max-backoff 2m'.

import { spawnSync } from 'node:child_process';

const smoke = process.argv.includes('--smoke');
const binary = process.env.CREDSYNC_BENCH_FLEET;
if (!binary) {
  console.error('fleet: CREDSYNC_BENCH_FLEET is not set (bench/run sets it)');
  process.exit(2);
}
const args = smoke ? ['--pods', '40', '--startup-jitter', '0s,10s'] : [];
if (process.env.FLEET_ARGS) args.push(...process.env.FLEET_ARGS.split(/\s+/).filter(Boolean));
const started = Date.now();
const run = spawnSync(binary, args, { stdio: 'inherit' });
if (run.error) {
  console.error(`fleet: cannot run ${binary}: ${run.error.message}`);
  process.exit(1);
}
console.log(`\nsimulated in ${((Date.now() - started) / 1000).toFixed(1)} s of wall time`);
process.exit(run.status === 0 ? 0 : 1);
