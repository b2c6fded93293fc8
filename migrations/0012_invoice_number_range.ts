import type { Knex } from 'knex';
import { runScript } from '../src/db/statements.js';

// Invoice numbers stay within 1..2^53 - 1 (src/invoices/numbering.ts,
// INVOICE_NUMBER_MAX): the columns are bigint, but Herald computes the next
// number in JavaScript, exact only up to 2^53 - 1. Past it, last + 1 == last
// and the next invoice would repeat a number. The API refuses such start
// numbers and generateInvoice stops at the last one; these CHECKs make it a
// database invariant for rows written any other way.

export async function up(knex: Knex): Promise<void> {
  await runScript(knex, `
    ALTER TABLE parties
      ADD CONSTRAINT ck_parties_invoice_start_number_safe CHECK (invoice_start_number <= 9007199254740991),
      ADD CONSTRAINT ck_parties_last_invoice_number_safe CHECK (last_invoice_number <= 9007199254740991);
    ALTER TABLE invoices
      ADD CONSTRAINT ck_invoices_number_int_safe CHECK (invoice_number_int <= 9007199254740991);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await runScript(knex, `
    ALTER TABLE invoices DROP CONSTRAINT ck_invoices_number_int_safe;
    ALTER TABLE parties
      DROP CONSTRAINT ck_parties_invoice_start_number_safe,
      DROP CONSTRAINT ck_parties_last_invoice_number_safe;
  `);
}
