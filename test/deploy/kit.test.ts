import { testWiring } from '../helpers/wiring.js';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { CONFIG_KEYS, loadConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import { admin as adminDb, urlFor, useTestDb } from '../helpers/db.js';
import { REDIS_URL, quietLog } from '../jobs/support.js';
import { SERVER_NODE_OPTIONS, WORKER_NODE_OPTIONS } from '../../scripts/bench/support.js';

// No container can be built and no systemd runs here, so the deployment kit
// (deploy/systemd, deploy/Dockerfile, deploy/compose.yaml, .env.example) is
// checked against what it relies on: the CLI's subcommands and options, the
// config schema's keys and values, the /readyz route, and the shutdown grace.
// `deploy/systemd/verify` (run by .ci/run) checks the unit syntax itself.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const INSTALL_DIR = '/opt/herald';
/** What `npm run build` (tsconfig.build.json: rootDir ".", outDir "dist") makes of the CLI entry. */
const COMPILED_CLI = `${INSTALL_DIR}/dist/src/cli/main.js`;

interface HeraldRun {
  where: string;
  args: string[];
}

// --- systemd units: sections of Key=Value lines, a key may repeat ---
type Unit = Record<string, Record<string, string[]>>;
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) {
      section = header[1]!;
      unit[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `not Key=Value: ${line}`).to.be.greaterThan(0);
    ((unit[section] ??= {})[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return unit;
}
const UNIT_FILES = fs.readdirSync(path.join(ROOT, 'deploy/systemd')).filter((f) => f.endsWith('.service'));
const units = Object.fromEntries(UNIT_FILES.map((f) => [f, parseUnit(read(`deploy/systemd/${f}`))]));

function durationMs(value: string): number {
  const m = value.match(/^(\d+)(ms|s|min)?$/);
  if (!m) throw new Error(`unsupported duration ${value}`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'min' ? 60_000 : 1000);
}

// --- Dockerfile: instructions with their continuation lines joined ---
function dockerInstructions(text: string): { op: string; rest: string }[] {
  const joined = text
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => ({ op: l.split(/\s+/)[0]!.toUpperCase(), rest: l.slice(l.search(/\s/) + 1).trim() }));
}
const docker = dockerInstructions(read('deploy/Dockerfile'));
const runtimeStage = docker.slice(docker.map((i) => i.op).lastIndexOf('FROM'));
const lastOf = (op: string) => runtimeStage.filter((i) => i.op === op).at(-1)?.rest;
const dockerEnv: Record<string, string> = Object.fromEntries(
  runtimeStage.filter((i) => i.op === 'ENV').flatMap((i) => [...i.rest.matchAll(/([A-Z0-9_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);

// --- compose.yaml: the services that run the Herald image ---
interface ComposeService {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  env_file?: { path: string }[];
  stop_grace_period?: string;
}
const compose = parseYaml(read('deploy/compose.yaml'), { merge: true }) as { services: Record<string, ComposeService> };
const heraldServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
/** Compose substitutes ${VAR...} from its own environment; any value stands in for it here. */
const interpolate = (v: string) => v.replace(/\$\{[A-Z0-9_]+(?::?[-?][^}]*)?\}/g, 'placeholder');

/** Node's own setting, not Herald's: the workers' V8 flags (docs/deploy.md, "How many workers"). */
const NODE_KEYS = ['NODE_OPTIONS'];
const withoutNodeKeys = (env: Record<string, string>) => Object.fromEntries(Object.entries(env).filter(([k]) => !NODE_KEYS.includes(k)));
const unitEnvAll = (unit: Unit) =>
  Object.fromEntries((unit.Service?.Environment ?? []).flatMap((e) => e.split(/\s+/)).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
const composeEnvAll = (s: ComposeService) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
/** The Herald config keys a unit or a compose service sets. */
const unitEnv = (unit: Unit) => withoutNodeKeys(unitEnvAll(unit));
const composeEnv = (s: ComposeService) => withoutNodeKeys(composeEnvAll(s));

/** Every place the kit runs Herald, and with which arguments. */
function heraldRuns(): HeraldRun[] {
  const runs: HeraldRun[] = [];
  for (const [file, unit] of Object.entries(units)) {
    for (const exec of unit.Service?.ExecStart ?? []) {
      const [node, script, ...args] = exec.split(/\s+/);
      expect(node, `${file}: ExecStart runs node`).to.equal('/usr/bin/node');
      expect(script, `${file}: ExecStart runs the compiled CLI`).to.equal(COMPILED_CLI);
      runs.push({ where: file, args });
    }
  }
  const entrypoint = JSON.parse(lastOf('ENTRYPOINT')!) as string[];
  expect(entrypoint, 'Dockerfile ENTRYPOINT').to.deep.equal(['node', COMPILED_CLI]);
  runs.push({ where: 'Dockerfile CMD', args: JSON.parse(lastOf('CMD')!) as string[] });
  for (const [name, s] of heraldServices) {
    expect(s.command, `compose ${name}: command`).to.be.an('array');
    runs.push({ where: `compose ${name}`, args: s.command! });
  }
  return runs;
}

describe('deploy/kit: systemd units, Dockerfile and compose.yaml against the CLI and the config schema', () => {
  it('finds the three units, the image and the Herald services it checks', () => {
    expect(UNIT_FILES.sort()).to.deep.equal(['herald-migrate.service', 'herald-serve.service', 'herald-worker@.service']);
    expect(heraldServices.map(([n]) => n).sort()).to.deep.equal(['migrate', 'serve', 'worker']);
    expect(heraldRuns().map((r) => r.args[0]).sort()).to.deep.equal(['migrate', 'migrate', 'serve', 'serve', 'serve', 'worker', 'worker']);
  });

  it('runs only subcommands and options the CLI has (asked with --help)', function () {
    this.timeout(180_000);
    const byCommand = new Map<string, Set<string>>();
    for (const run of heraldRuns()) {
      const [command, ...rest] = run.args;
      const flags = byCommand.get(command!) ?? new Set<string>();
      for (const a of rest) if (a.startsWith('--')) flags.add(a.split('=')[0]!);
      byCommand.set(command!, flags);
    }
    // One at a time: each pays tsx's start-up, and the machine is shared.
    for (const [command, flags] of byCommand) {
      const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', command, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
      expect(out.status, `herald ${command} --help: ${out.stderr}`).to.equal(0);
      // An unknown command also exits 0 with the program's help: the usage line tells them apart.
      expect(out.stdout, `herald ${command} exists`).to.match(new RegExp(`^Usage: herald ${command} `, 'm'));
      for (const flag of flags) expect(out.stdout, `herald ${command} has ${flag}`).to.match(new RegExp(`(^|[\\s,])${flag}\\b`, 'm'));
    }
  });

  it('sets only config keys, with values the config schema accepts', () => {
    const keys = new Set<string>(CONFIG_KEYS);
    for (const [file, unit] of Object.entries(units)) {
      const env = unitEnv(unit);
      for (const k of Object.keys(env)) expect(keys.has(k), `${file}: Environment=${k} is not a config key`).to.equal(true);
      expect(() => loadConfig(env), file).not.to.throw();
      expect(unit.Service?.EnvironmentFile, `${file}: EnvironmentFile`).to.deep.equal(['/etc/herald/herald.env']);
    }
    expect(Object.keys(dockerEnv)).to.include.members(['HTTP_HOST', 'HERALD_DATA_DIR']);
    for (const k of Object.keys(dockerEnv)) expect(keys.has(k), `Dockerfile ENV ${k} is not a config key`).to.equal(true);
    expect(loadConfig(dockerEnv).HTTP_HOST, 'a container must listen beyond its loopback').to.equal('0.0.0.0');
    for (const [name, s] of heraldServices) {
      const env = composeEnv(s);
      for (const k of Object.keys(env)) expect(keys.has(k), `compose ${name}: ${k} is not a config key`).to.equal(true);
      const config = loadConfig({ ...dockerEnv, ...env });
      expect(config.DATABASE_URL, `compose ${name} reaches the postgres service`).to.match(/@postgres:5432\//);
      expect(config.REDIS_URL, `compose ${name} reaches the redis service`).to.equal('redis://redis:6379');
      expect(s.env_file?.map((f) => f.path), `compose ${name}: settings from the repository's .env`).to.deep.equal(['../.env']);
    }
  });

  it('runs workers and serve with the NODE_OPTIONS bench:export and bench:submit measure them with, and nothing else with any', () => {
    const options = (env: Record<string, string>) => env.NODE_OPTIONS;
    const expected: Record<string, string | undefined> = { worker: WORKER_NODE_OPTIONS, serve: SERVER_NODE_OPTIONS };
    for (const [file, unit] of Object.entries(units)) {
      expect(options(unitEnvAll(unit)), file).to.equal(expected[/^herald-(\w+)/.exec(file)![1]!]);
    }
    for (const [name, s] of heraldServices) expect(options(composeEnvAll(s)), `compose ${name}`).to.equal(expected[name]);
  });

  it('gives the worker more time to stop than its --grace plus the abort grace, and runs as a dedicated user, hardened', () => {
    const ABORT_GRACE_MS = 2000; // src/jobs/runner.ts abortGraceMs default, then 1 s for the last settles
    const graceOf = (args: string[]) => Number(args[args.indexOf('--grace') + 1]);
    const worker = units['herald-worker@.service']!.Service!;
    const grace = graceOf(worker.ExecStart![0]!.split(/\s+/));
    expect(grace).to.be.greaterThan(0);
    expect(worker.KillSignal).to.deep.equal(['SIGTERM']);
    expect(durationMs(worker.TimeoutStopSec![0]!)).to.be.greaterThan(grace + ABORT_GRACE_MS + 1000);
    const composeWorker = compose.services.worker!;
    expect(durationMs(composeWorker.stop_grace_period!)).to.be.greaterThan(graceOf(composeWorker.command!) + ABORT_GRACE_MS + 1000);
    // serve forces its own exit 10 s after the first signal (src/http/commands.ts).
    expect(durationMs(units['herald-serve.service']!.Service!.TimeoutStopSec![0]!)).to.be.greaterThan(10_000);
    for (const [file, unit] of Object.entries(units)) {
      const s = unit.Service!;
      expect(s.User, file).to.deep.equal(['herald']);
      for (const [k, v] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', CapabilityBoundingSet: '' })) {
        expect(s[k], `${file}: ${k}`).to.deep.equal([v]);
      }
      expect(s.Restart, `${file}: Restart`).to.deep.equal(['on-failure']);
    }
    for (const file of ['herald-serve.service', 'herald-worker@.service']) {
      const u = units[file]!.Unit!;
      expect(u.After?.join(' '), `${file} starts after migrate`).to.contain('herald-migrate.service');
      expect(u.Wants?.join(' '), `${file} pulls migrate in`).to.contain('herald-migrate.service');
    }
    expect(units['herald-migrate.service']!.Service!.Type).to.deep.equal(['oneshot']);
    expect(lastOf('USER'), 'the image runs as a non-root user').to.equal('herald');
  });

  it('.env.example lists exactly the config keys, each under a line saying what it is, with its real default', () => {
    const defaults = loadConfig({}) as Record<string, unknown>;
    const lines = read('.env.example').split('\n');
    const seen: string[] = [];
    lines.forEach((line, i) => {
      const m = line.match(/^(# )?([A-Z][A-Z0-9_]*)=(.*)$/);
      if (!m) return;
      const [, commented, key, value] = m;
      seen.push(key!);
      const dflt = defaults[key!];
      if (dflt === undefined) {
        expect(commented, `${key} has no default: an empty line to fill in`).to.equal(undefined);
        expect(value, key).to.equal('');
      } else {
        expect(commented, `${key} has a default: shown commented out`).to.equal('# ');
        expect(value, `${key}'s default`).to.equal(typeof dflt === 'object' ? JSON.stringify(dflt) : String(dflt));
      }
      const above = lines[i - 1] ?? '';
      expect(above, `the line above ${key} says what it is (three words or more)`).to.match(/^# \S+( \S+){2,}/);
      expect(above, `the line above ${key} is not another setting`).not.to.match(/^# [A-Z][A-Z0-9_]*=/);
    });
    expect(seen).to.deep.equal([...CONFIG_KEYS]);
  });

  describe('serve and worker refuse a schema behind their code (so units and containers may start in any order)', () => {
    const t = useTestDb(import.meta.url, 'behind');
    it('exits 1 with one line naming the missing migration and what to run', async function () {
      this.timeout(180_000);
      const { db, url } = t.get();
      const { rows } = await db.raw(`SELECT id, name, batch, migration_time FROM knex_migrations ORDER BY id DESC LIMIT 1`);
      await db.raw(`DELETE FROM knex_migrations WHERE id = ?`, [rows[0].id]);
      try {
        const env = { ...process.env, DATABASE_URL: url, REDIS_URL, LOG_LEVEL: 'warn' };
        for (const args of [['worker'], ['serve', '--port', '0', '--no-worker']]) {
          const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 90_000 });
          expect(out.status, `herald ${args[0]}: ${out.stderr}`).to.equal(1);
          expect(out.stderr).to.equal(`herald: the database schema is behind this release (1 migration(s) not run: ${rows[0].name}); run \`herald migrate\` first\n`);
        }
      } finally {
        await db('knex_migrations').insert(rows);
      }
    });
  });

  it('lets several hosts run herald migrate at once on an empty database: one applies, the other finds it current', async function () {
    this.timeout(180_000);
    const name = `herald_t_kit_empty_${process.pid}`;
    const admin = (sql: string) => adminDb((c) => c.query(sql));
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${name}`);
    let ok = false;
    try {
      const env = { ...process.env, DATABASE_URL: urlFor(name) };
      const run = () =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'migrate', '--json'], { cwd: ROOT, env });
          let out = '';
          let err = '';
          child.stdout.on('data', (d: Buffer) => (out += String(d)));
          child.stderr.on('data', (d: Buffer) => (err += String(d)));
          child.once('exit', (code) => resolve({ code, out, err }));
        });
      const results = await Promise.all([run(), run()]);
      for (const r of results) expect(r.code, r.err).to.equal(0);
      const applied = results.map((r) => (JSON.parse(r.out) as { applied: string[] }).applied.length).sort((a, b) => a - b);
      expect(applied[0], 'the second found nothing to do').to.equal(0);
      expect(applied[1], 'the first applied every migration').to.be.greaterThan(9);
      ok = true;
    } finally {
      // Kept when the test failed, like every test database.
      if (ok) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      else process.stderr.write(`kept test database ${name}\n`);
    }
  });

  describe('against a real server: the image HEALTHCHECK (run as Docker would) and the alert rules', () => {
    const t = useTestDb(import.meta.url);
    const apps: FastifyInstance[] = [];
    afterEach(async () => {
      for (const a of apps.splice(0)) await a.close();
    });
    const healthcheck = JSON.parse(lastOf('HEALTHCHECK')!.replace(/^(--\S+\s+)*CMD\s+/, '')) as string[];
    async function listen(env: Record<string, string>): Promise<number> {
      const app = await buildServer({ db: t.get().db, config: loadConfig(env), log: quietLog, processMetrics: false, plugins: [] });
      apps.push(app);
      await app.listen({ host: '127.0.0.1', port: 0 });
      return (app.server.address() as { port: number }).port;
    }
    function check(port: number): Promise<number | null> {
      const [cmd, ...args] = healthcheck;
      const child = spawn(cmd === 'node' ? process.execPath : cmd!, args, { env: { ...process.env, HTTP_PORT: String(port) }, stdio: 'ignore' });
      return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    }

    it('probes /readyz, a route the server has', async () => {
      expect(healthcheck.join(' ')).to.contain("'/readyz'");
      const port = await listen({ REDIS_URL });
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(res.status).to.equal(200);
      expect(await check(port)).to.equal(0);
    });

    it('alert rules use only metrics /metrics exports and routes the server has', async () => {
      const rules = parseYaml(read('deploy/prometheus/herald-alerts.yaml')) as { groups: { rules: { alert: string; expr: string }[] }[] };
      const exprs = rules.groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert, expr: String(r.expr) })));
      expect(exprs.length).to.be.greaterThan(5);
      const app = await buildServer({ db: t.get().db, config: loadConfig({ REDIS_URL }), log: quietLog, plugins: testWiring().routes });
      apps.push(app);
      await app.inject({ url: '/healthz' }); // the HTTP histogram has a series once a request was answered
      const text = (await app.inject({ url: '/metrics' })).body;
      const exported = new Set<string>();
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        exported.add(m[1]!);
        if (m[2] === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) exported.add(m[1]! + suffix);
      }
      for (const { alert, expr } of exprs) {
        const names = expr.match(/\bherald_[a-z0-9_]+/g) ?? [];
        for (const name of names) expect(exported.has(name), `${alert}: ${name} is not exported`).to.equal(true);
        for (const [, route] of expr.matchAll(/route="([^"]+)"/g)) {
          const method = expr.match(/method="([A-Z]+)"/)?.[1] ?? 'GET';
          expect(app.hasRoute({ method: method as 'GET', url: route! }), `${alert}: ${method} ${route} is not a route`).to.equal(true);
        }
      }
    });

    it('fails while a dependency is down, and when nothing listens', async () => {
      const port = await listen({ REDIS_URL: 'redis://127.0.0.1:1' });
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).to.equal(503);
      expect(await check(port)).to.equal(1);
      await apps.pop()!.close();
      expect(await check(port)).to.equal(1);
    });
  });
});
