import type { Command } from 'commander';
import { registerSandboxCommands } from '../sandbox/commands.js';
import { registerWorkerCommand } from '../jobs/commands.js';
import { registerOperationsCommands } from '../admin/commands.js';
import { registerTaricCommands } from '../taric/commands.js';
import { jobDefinitions, permanentFailureHook } from './job-definitions.js';
import { registerHttpCommands } from '../http/commands.js';
import { registerInvoiceCommands } from '../invoices/commands.js';
import { registerExporterCommands } from '../exporter/commands.js';
import { registerDemoCommand } from './demo.js';
import { registerReportCommands } from '../reports/commands.js';
import { registerProviderCommands } from '../providers/commands.js';

// Each capability adds its own commands; this list is the only place that
// knows them all.
export function registerCommands(program: Command): void {
  registerSandboxCommands(program);
  registerWorkerCommand(program, jobDefinitions, permanentFailureHook);
  registerOperationsCommands(program, jobDefinitions, permanentFailureHook);
  registerHttpCommands(program, jobDefinitions, permanentFailureHook);
  registerInvoiceCommands(program);
  registerTaricCommands(program);
  registerExporterCommands(program);
  registerDemoCommand(program);
  registerReportCommands(program, jobDefinitions);
  registerProviderCommands(program);
}
