import type { Knex } from 'knex';
import { isNodePostgres } from './index.js';

// A hot statement as a named prepared statement: Postgres parses and plans it
// once per connection instead of once per call. Measured on the invoice
// request INSERT (npm run bench:submit): parse and plan were about a fifth of
// a five-row batch's round trip. knex has no prepared statements, so this
// borrows a connection from knex's own pool (same limits, timeouts and
// connection checks) and talks to the driver directly.

interface PgDriverClient {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

interface EmbeddedClient {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * Runs `text` (placeholders $1..$n) as the prepared statement `name`, outside
 * any transaction (autocommit). One name must always carry the same text. On
 * the embedded database the statement runs unprepared.
 */
export async function queryPrepared<R>(db: Knex, name: string, text: string, values: unknown[]): Promise<R[]> {
  // A transaction's statements must run on its own connection, which this cannot reach.
  if (db.isTransaction) throw new Error(`queryPrepared(${name}) cannot run inside a transaction`);
  const client = db.client as Knex.Client & {
    acquireConnection(): Promise<unknown>;
    releaseConnection(conn: unknown): Promise<unknown>;
  };
  const conn = await client.acquireConnection();
  try {
    const result = isNodePostgres(db)
      ? await (conn as PgDriverClient).query({ name, text, values })
      : await (conn as EmbeddedClient).query(text, values);
    return result.rows as R[];
  } finally {
    await client.releaseConnection(conn);
  }
}
