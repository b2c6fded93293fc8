import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { admin, arg, dbUrl, finish, loadGuard, quantile, type Target } from './support.js';

// npm run bench:cli [-- --runs 15 --entry bin/herald.js]
//
// Start-up time of the compiled CLI (npm run build first; the npm script
// does it): spawns `node <entry> ARGS` --runs times for each command and
// prints the median and p90 wall time and the user+system CPU of the child,
// which depends less on what else the machine runs. `queue status` talks to
// a real Postgres: a scratch database this script creates, migrates (with
// `herald migrate`) and drops. --entry defaults to bin/herald.js (what
// `npx herald` runs); pass dist/src/cli/main.js to skip the bin's checks.
// Targets (issue 13), on a quiet machine: `herald --help` < 0.3 s,
// `herald queue status` < 1 s.
// Env: BENCH_DATABASE_URL (admin connection).

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUNS = arg('runs', 15);
const entryArg = process.argv.indexOf('--entry');
const ENTRY = path.resolve(ROOT, entryArg > 0 ? process.argv[entryArg + 1]! : 'bin/herald.js');

interface Case {
  name: string;
  args: string[];
  target: number | null;
}

const CASES: Case[] = [
  { name: 'herald --help', args: ['--help'], target: 0.3 },
  { name: 'herald --version', args: ['--version'], target: null },
  { name: 'herald workbaskets import --help', args: ['workbaskets', 'import', '--help'], target: null },
  { name: 'herald queue status', args: ['queue', 'status'], target: 1 },
];


function once(args: string[], env: NodeJS.ProcessEnv): { wall: number; cpu: number } {
  const started = process.hrtime.bigint();
  // The child reports its own CPU (user + system) on exit through a preload.
  const r = spawnSync(process.execPath, ['--import', CPU_REPORTER, ENTRY, ...args], { cwd: ROOT, env, encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`herald ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
  const m = /^herald-cpu (\d+)$/m.exec(r.stderr);
  return { wall, cpu: m ? Number(m[1]) / 1e6 : NaN };
}

const CPU_REPORTER = `data:text/javascript,${encodeURIComponent(
  "process.on('exit', () => { const c = process.cpuUsage(); process.stderr.write('herald-cpu ' + (c.user + c.system) + '\\n'); });",
)}`;

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js'))) throw new Error('no compiled CLI: run `npm run build` first');
  const database = `herald_bench_cli_${process.pid}`;
  await admin(`CREATE DATABASE ${database}`);
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: dbUrl(database), LOG_LEVEL: 'warn' };
  delete env.REDIS_URL;
  try {
    once(['migrate'], env);
    const watch = loadGuard();
    process.stdout.write(`node ${process.version}, ${os.cpus().length} cores, entry ${path.relative(ROOT, ENTRY)}, ${RUNS} runs each\n\n`);
    const head = ['command', 'median s', 'p90 s', 'cpu median s', 'target'];
    const rows: string[][] = [];
    const commands: { name: string; medianSeconds: number; p90Seconds: number; cpuMedianSeconds: number }[] = [];
    const targets: Record<string, Target> = {};
    for (const c of CASES) {
      once(c.args, env); // warm the file cache
      const walls: number[] = [];
      const cpus: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const r = once(c.args, env);
        walls.push(r.wall);
        cpus.push(r.cpu);
      }
      walls.sort((a, b) => a - b);
      cpus.sort((a, b) => a - b);
      const median = quantile(walls, 0.5);
      if (c.target !== null) targets[`${c.name} < ${c.target} s`] = { met: median < c.target, value: `${median.toFixed(3)} s` };
      commands.push({ name: c.name, medianSeconds: +median.toFixed(3), p90Seconds: +quantile(walls, 0.9).toFixed(3), cpuMedianSeconds: +quantile(cpus, 0.5).toFixed(3) });
      rows.push([c.name, median.toFixed(3), quantile(walls, 0.9).toFixed(3), quantile(cpus, 0.5).toFixed(3), c.target === null ? '-' : `< ${c.target} s`]);
    }
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const row of [head, ...rows]) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`);
    process.stdout.write("(on a busy machine compare the cpu column: it counts only the command's own work)\n\n");
    finish(watch.stop(), { node: process.version, runs: RUNS, commands }, targets);
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
}

await main();
