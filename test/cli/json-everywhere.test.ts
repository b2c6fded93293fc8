import { expect } from 'chai';
import { Command } from 'commander';
import { registerCommands } from '../../src/cli/commands.js';

// Every command a person can run has --help (commander's) and --json, so a
// script can read any answer; checked over the whole tree the bin registers.

function leaves(cmd: Command, prefix: string[] = []): Array<{ name: string; cmd: Command }> {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (subs.length === 0) return [{ name: prefix.join(' '), cmd }];
  return subs.flatMap((c) => leaves(c, [...prefix, c.name()]));
}

describe('cli: --json on every command', () => {
  it('offers --json on every leaf command', () => {
    const program = new Command('herald');
    registerCommands(program);
    const all = leaves(program);
    expect(all.length).to.be.greaterThan(40);
    const without = all.filter(({ cmd }) => !cmd.options.some((o) => o.long === '--json')).map(({ name }) => name);
    expect(without).to.deep.equal([]);
  });
});
