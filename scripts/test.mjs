#!/usr/bin/env node
// Runs the suite as N mocha processes side by side, each over its own share
// of the test files. Files are independent (each clones its own database from
// its process's template and keys Redis under its own prefix), and most of a
// file's time is spent waiting on Postgres, Redis or a child process, so two
// shards on two cores finish well before one.
//
// Why not `mocha --parallel`: a worker that died took its file's results with
// it and the run still exited 0. Here each shard is a plain mocha process; the
// run fails if any shard exits non-zero, dies of a signal or never prints its
// summary line.
//
// Usage: node scripts/test.mjs [--shards N] [mocha args...]
//   HERALD_TEST_SHARDS=N   same as --shards (default: 2, or 1 with a file list)
//   Files or globs given as arguments run in one shard, as plain mocha would.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOCHA = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');

function parseArgs(argv) {
  const rest = [];
  let shards = process.env.HERALD_TEST_SHARDS ? Number(process.env.HERALD_TEST_SHARDS) : undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--shards') shards = Number(argv[++i]);
    else if (argv[i].startsWith('--shards=')) shards = Number(argv[i].slice(9));
    else rest.push(argv[i]);
  }
  if (shards !== undefined && (!Number.isInteger(shards) || shards < 1 || shards > 16)) {
    console.error('test: --shards must be a whole number from 1 to 16');
    process.exit(2);
  }
  return { shards, rest };
}

function testFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(full));
    else if (entry.name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

// Size stands in for duration: the long files (crash tests, CLI end to end)
// are also the big ones. Greedy: largest first onto the lightest shard.
function split(files, n) {
  const shards = Array.from({ length: n }, () => ({ weight: 0, files: [] }));
  const sized = files.map((f) => ({ f, w: fs.statSync(f).size })).sort((a, b) => b.w - a.w);
  for (const { f, w } of sized) {
    const lightest = shards.reduce((a, b) => (b.weight < a.weight ? b : a));
    lightest.files.push(path.relative(ROOT, f));
    lightest.weight += w;
  }
  return shards.map((s) => s.files.sort()).filter((s) => s.length > 0);
}

function runShard(index, files, extra, streamed) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MOCHA, ...extra, ...files], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: process.stdout.isTTY ? '1' : '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (chunk) => {
      if (streamed) process.stdout.write(chunk);
      else output += chunk;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code, signal) => resolve({ index, code, signal, output, files }));
  });
}

const { shards: asked, rest } = parseArgs(process.argv.slice(2));
const options = rest.filter((a) => a.startsWith('-'));
const named = rest.filter((a) => !a.startsWith('-'));
const n = asked ?? (named.length ? 1 : 2);
const started = Date.now();

if (named.length || n === 1) {
  // One shard: plain mocha, its own output and exit code.
  const child = spawn(process.execPath, [MOCHA, ...options, ...(named.length ? named : ['test/**/*.test.ts'])], { cwd: ROOT, stdio: 'inherit' });
  child.on('close', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
} else {
  const groups = split(testFiles(path.join(ROOT, 'test')), n);
  console.log(`test: ${groups.reduce((a, g) => a + g.length, 0)} files in ${groups.length} shards (${os.availableParallelism()} cores); each shard's report follows when it ends`);
  const results = await Promise.all(groups.map((files, i) => runShard(i + 1, files, options, false)));
  let failed = false;
  for (const r of results) {
    const summary = r.output.match(/(\d+) passing/);
    const failing = r.output.match(/(\d+) failing/);
    const pending = r.output.match(/(\d+) pending/);
    console.log(`\n===== shard ${r.index}/${results.length}: ${r.files.length} files =====`);
    process.stdout.write(r.output);
    const bad = r.signal !== null || r.code !== 0 || !summary;
    if (bad) failed = true;
    r.line = `shard ${r.index}: ${summary ? summary[1] : '?'} passing, ${failing ? failing[1] : 0} failing, ${pending ? pending[1] : 0} pending` +
      (r.signal ? `, killed by ${r.signal}` : r.code !== 0 ? `, exit ${r.code}` : '') + (summary ? '' : ', NO SUMMARY (the mocha process died)');
  }
  console.log('\n===== summary =====');
  for (const r of results) console.log(r.line);
  const total = (re) => results.reduce((a, r) => a + Number(r.output.match(re)?.[1] ?? 0), 0);
  console.log(`all: ${total(/(\d+) passing/)} passing, ${total(/(\d+) failing/)} failing, ${total(/(\d+) pending/)} pending in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.exit(failed ? 1 : 0);
}
