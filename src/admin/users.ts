import type { Knex } from 'knex';
import { deleteUserSessions, countUserSessions } from './session-store.js';
import { findAdminUserByName, listAdminUsers, setAdminPasswordHash, setAdminUserDisabled, type AdminUserRow } from './store.js';
import { clearAttempts, userLocks } from './throttle.js';

// What `herald admin set-password / disable-user / enable-user / list-users`
// do. A new password or a disabled user ends every session of that user in
// the same transaction (the next request with an old cookie lands on the
// login page). A new password and enabling also lift the name's login lock:
// the operator who did it has vouched for the person.

export class UnknownAdminUser extends Error {
  constructor(readonly userName: string) {
    super(`no admin user named "${userName}" (herald admin list-users shows them)`);
    this.name = 'UnknownAdminUser';
  }
}

async function byName(db: Knex.Transaction, name: string): Promise<AdminUserRow> {
  const user = await findAdminUserByName(db, name);
  if (!user) throw new UnknownAdminUser(name);
  return user;
}

export async function changePassword(db: Knex, name: string, passwordHash: string): Promise<{ user: AdminUserRow; endedSessions: number }> {
  return db.transaction(async (trx) => {
    const user = await byName(trx, name);
    await setAdminPasswordHash(trx, user.id, passwordHash);
    const endedSessions = await deleteUserSessions(trx, user.id);
    await clearAttempts(trx, [{ scope: 'user', key: user.name }]);
    return { user, endedSessions };
  });
}

export async function disableUser(db: Knex, name: string, now: Date): Promise<{ user: AdminUserRow; endedSessions: number }> {
  return db.transaction(async (trx) => {
    const user = await setAdminUserDisabled(trx, (await byName(trx, name)).id, now);
    return { user, endedSessions: await deleteUserSessions(trx, user.id) };
  });
}

export async function enableUser(db: Knex, name: string): Promise<AdminUserRow> {
  return db.transaction(async (trx) => {
    const user = await setAdminUserDisabled(trx, (await byName(trx, name)).id, null);
    await clearAttempts(trx, [{ scope: 'user', key: user.name }]);
    return user;
  });
}

export interface AdminUserView {
  id: number;
  name: string;
  createdAt: Date;
  disabledAt: Date | null;
  sessions: number;
  loginsRefusedUntil: Date | null;
}

export async function describeUsers(db: Knex, now: Date): Promise<AdminUserView[]> {
  const [users, sessions, locks] = await Promise.all([listAdminUsers(db), countUserSessions(db, now), userLocks(db, now)]);
  return users.map((u) => ({
    id: u.id,
    name: u.name,
    createdAt: u.created_at,
    disabledAt: u.disabled_at,
    sessions: sessions.get(u.id) ?? 0,
    loginsRefusedUntil: locks.get(u.name)?.blockedUntil ?? null,
  }));
}
