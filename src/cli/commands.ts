import type { Command } from 'commander';
import { wiredApp } from '../lib/cli/context.js';
import { registerSandboxCommands } from '../sandbox/commands.js';
import { registerWorkerCommand } from '../jobs/commands.js';
import { registerOperationsCommands } from '../admin/commands.js';
import { registerTaricCommands } from '../taric/commands.js';
import { registerHttpCommands } from '../http/commands.js';
import { registerInvoiceCommands } from '../invoices/commands.js';
import { registerExporterCommands } from '../exporter/commands.js';
import { registerDemoCommand } from './demo-command.js';
import { registerReportCommands } from '../reports/commands.js';
import { registerProviderCommands } from '../providers/commands.js';
import { registerDoctorCommand } from '../doctor/commands.js';

// Each capability adds its own commands; this list is the only place that
// knows them all. Commands that run jobs, serve routes or use a capability's
// services get them from the one wiring (src/cli/wiring.ts), loaded when such
// a command runs: every registration here is cheap (see src/cli/main.ts).
export function registerCommands(program: Command): void {
  const withWiring = wiredApp(async (app) => (await import('./wiring.js')).wire(app));
  registerSandboxCommands(program);
  registerWorkerCommand(program, withWiring);
  registerOperationsCommands(program, withWiring);
  registerHttpCommands(program, withWiring);
  registerInvoiceCommands(program);
  registerTaricCommands(program);
  registerExporterCommands(program, withWiring);
  registerDemoCommand(program);
  registerReportCommands(program, withWiring);
  registerProviderCommands(program);
  registerDoctorCommand(program);
}
