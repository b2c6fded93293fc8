// Named crash points for the SIGKILL tests: when HERALD_CRASH_AT names this
// point, the process kills itself with SIGKILL right here: no finally blocks,
// no exit handlers, exactly like a power cut or an OOM kill. Read on every
// call (not at import) so a test can arm a point in an already-loaded module.
// An optional HERALD_CRASH_AFTER=n lets the first n passes through go by.
const passes = new Map<string, number>();

export function crashPoint(name: string): void {
  if (process.env.HERALD_CRASH_AT !== name) return;
  const seen = (passes.get(name) ?? 0) + 1;
  passes.set(name, seen);
  if (seen > Number(process.env.HERALD_CRASH_AFTER ?? 0)) process.kill(process.pid, 'SIGKILL');
}

/**
 * For the SIGKILL tests that need a process to hold work when it dies: when
 * HERALD_PAUSE_AT names this point, the returned promise never settles, so
 * the caller stays right here (a job claimed, nothing run, no heartbeat of
 * its own) until the test kills the process. Otherwise it resolves at once.
 */
export function pausePoint(name: string): Promise<void> | undefined {
  if (process.env.HERALD_PAUSE_AT !== name) return undefined;
  return new Promise<void>(() => setInterval(() => undefined, 1 << 30));
}
