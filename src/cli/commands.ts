import type { Command } from 'commander';

// Each capability adds its own commands; this list is the only place that
// knows them all.
export function registerCommands(program: Command): void {
  void program;
}
