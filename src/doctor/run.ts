import type { DoctorOptions } from './commands.js';
export async function runDoctor(_opts: DoctorOptions): Promise<void> {}
