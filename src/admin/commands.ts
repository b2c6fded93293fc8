import readline from 'node:readline';
import { InvalidArgumentError, type Command } from 'commander';
import { CliError, printJson, withApp, type WithWiredApp } from '../lib/cli/context.js';
import { readStdinText } from '../lib/cli/stdin.js';
import { isUniqueViolation } from '../db/errors.js';
import { ApiKeyNameTaken, createApiKey } from '../http/api-keys.js';
import type { JobsRuntime } from '../jobs/runtime/jobs-runtime.js';
import { registerQueueCommands } from '../queue/commands.js';
import { hashPassword, MIN_PASSWORD_LENGTH } from './passwords.js';
import { grantApiKeyScope, insertAdminUser } from './store.js';
import { changePassword, describeUsers, disableUser, enableUser, UnknownAdminUser } from './users.js';

// `herald admin ...` (users and admin keys for /admin) and, through
// registerQueueCommands, `herald queue ...`: one registration line in
// src/cli/commands.ts for all of operations.

function userName(value: string): string {
  if (!/^[A-Za-z0-9_.@-]{1,100}$/.test(value)) throw new InvalidArgumentError(`NAME: must be 1 to 100 letters, digits or _ . @ -, got "${value}"`);
  return value;
}

/** Asks on the terminal without echoing what is typed. */
async function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError('--password-stdin: stdin is not a terminal; pipe the password in with --password-stdin');
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
  let muted = false;
  out._writeToOutput = (s: string) => {
    if (!muted) process.stderr.write(s);
  };
  try {
    return await new Promise<string>((resolve) => {
      rl.question(question, (answer) => resolve(answer));
      muted = true;
    });
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/** A new password from stdin (--password-stdin) or asked twice on the terminal. */
async function readNewPassword(fromStdin: boolean | undefined): Promise<string> {
  let password: string;
  if (fromStdin) password = await readStdinText();
  else {
    password = await promptHidden('password: ');
    if ((await promptHidden('again: ')) !== password) throw new CliError('password: the two entries differ');
  }
  if (password.length < MIN_PASSWORD_LENGTH) throw new CliError(`password: must be at least ${MIN_PASSWORD_LENGTH} characters`);
  return password;
}

function unknownUser(err: unknown): never {
  if (err instanceof UnknownAdminUser) throw new CliError(`NAME: ${err.message}`);
  throw err;
}

export function registerOperationsCommands(program: Command, withJobs: WithWiredApp<{ jobs: JobsRuntime }>): void {
  registerQueueCommands(program, withJobs);
  const admin = program.command('admin').description('Users and keys that may log in to the /admin page');

  admin
    .command('create-user')
    .description(`Create an admin user; the password (at least ${MIN_PASSWORD_LENGTH} characters) is asked for, or read from stdin with --password-stdin`)
    .argument('<name>', 'the login name', userName)
    .option('--password-stdin', 'read the password from stdin (for scripts)')
    .option('--json', 'print {id, name} as JSON')
    .action(async (name: string, opts: { passwordStdin?: boolean; json?: boolean }) => {
      const hash = await hashPassword(await readNewPassword(opts.passwordStdin));
      const user = await withApp(({ db }) =>
        insertAdminUser(db, name, hash).catch((err: unknown) => {
          if (isUniqueViolation(err, 'ux_admin_users_name')) throw new CliError(`NAME: an admin user named "${name}" already exists`);
          throw err;
        }),
      );
      if (opts.json) printJson({ id: user.id, name: user.name });
      else process.stdout.write(`admin user "${name}" created (id ${user.id})\n`);
    });

  admin
    .command('create-key')
    .description('Create an API key with the admin scope (may log in to /admin and use the API); printed once')
    .argument('<name>', 'a unique key name', userName)
    .option('--json', 'print {id, name, key} as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const created = await withApp(({ db }) =>
        db.transaction(async (trx) => {
          const key = await createApiKey(trx, name).catch((err: unknown) => {
            if (err instanceof ApiKeyNameTaken) throw new CliError(`NAME: ${err.message}`);
            throw err;
          });
          await grantApiKeyScope(trx, key.id, 'admin');
          return key;
        }),
      );
      if (opts.json) printJson({ id: created.id, name: created.name, key: created.key, scopes: ['api', 'admin'] });
      else process.stdout.write(`${created.key}\n`);
    });

  admin
    .command('set-password')
    .description('Give an admin user a new password: ends all of that user\'s /admin sessions at once and lifts a login lock')
    .argument('<name>', 'the login name', userName)
    .option('--password-stdin', 'read the password from stdin (for scripts)')
    .option('--json', 'print {id, name, endedSessions} as JSON')
    .action(async (name: string, opts: { passwordStdin?: boolean; json?: boolean }) => {
      const hash = await hashPassword(await readNewPassword(opts.passwordStdin));
      const { user, endedSessions } = await withApp(({ db }) => changePassword(db, name, hash)).catch(unknownUser);
      if (opts.json) printJson({ id: user.id, name: user.name, endedSessions });
      else process.stdout.write(`new password for "${user.name}"; ${endedSessions} session(s) ended\n`);
    });

  admin
    .command('disable-user')
    .description('Stop an admin user logging in: ends all of that user\'s /admin sessions at once')
    .argument('<name>', 'the login name', userName)
    .option('--json', 'print {id, name, disabledAt, endedSessions} as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { user, endedSessions } = await withApp(({ db }) => disableUser(db, name, new Date())).catch(unknownUser);
      if (opts.json) printJson({ id: user.id, name: user.name, disabledAt: user.disabled_at, endedSessions });
      else process.stdout.write(`admin user "${user.name}" disabled; ${endedSessions} session(s) ended\n`);
    });

  admin
    .command('enable-user')
    .description('Let a disabled admin user log in again (with the password it had); lifts a login lock')
    .argument('<name>', 'the login name', userName)
    .option('--json', 'print {id, name, disabledAt} as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const user = await withApp(({ db }) => enableUser(db, name)).catch(unknownUser);
      if (opts.json) printJson({ id: user.id, name: user.name, disabledAt: user.disabled_at });
      else process.stdout.write(`admin user "${user.name}" enabled\n`);
    });

  admin
    .command('list-users')
    .description('Admin users: disabled or not, live /admin sessions, and until when logins are refused after failures')
    .option('--json', 'print [{id, name, createdAt, disabledAt, sessions, loginsRefusedUntil}] as JSON')
    .action(async (opts: { json?: boolean }) => {
      const users = await withApp(({ db }) => describeUsers(db, new Date()));
      if (opts.json) return printJson(users);
      if (users.length === 0) return void process.stdout.write('no admin users (herald admin create-user NAME adds one)\n');
      for (const u of users) {
        const state = u.disabledAt ? `disabled since ${u.disabledAt.toISOString()}` : 'active';
        const lock = u.loginsRefusedUntil ? `, logins refused until ${u.loginsRefusedUntil.toISOString()}` : '';
        process.stdout.write(`${u.name}\t${state}, ${u.sessions} session(s)${lock}\n`);
      }
    });
}
