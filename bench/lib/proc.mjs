// What the benchmarks read about a process from /proc (Linux).

import fs from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ: /proc/PID/stat times are in 1/100 s on Linux

export function statusField(status, name) {
  const match = status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'));
  return match ? Number(match[1]) : NaN;
}

// One sample of the process: memory in KiB (resident, its high-water mark,
// anonymous and file-backed parts), threads, open descriptors, CPU seconds
// (user + system) and when it was taken.
export function sample(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces;
  // fields[0] is field 3 (state), so utime (14) and stime (15) are [11], [12].
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    rssKiB: statusField(status, 'VmRSS'),
    hwmKiB: statusField(status, 'VmHWM'),
    anonKiB: statusField(status, 'RssAnon'),
    fileKiB: statusField(status, 'RssFile'),
    threads: statusField(status, 'Threads'),
    fds: fs.readdirSync(`/proc/${pid}/fd`).length,
    cpu: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
    at: process.hrtime.bigint(),
  };
}
