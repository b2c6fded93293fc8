// The ranges of the columns outside values end in, as plain numbers: the CLI's
// argument parsers need them at start-up without loading the boundary
// schemas (zod, decimal.js) that src/lib/boundary.ts builds on them.

/** Largest value of a Postgres integer (int4 / serial) column. */
export const INT4_MAX = 2_147_483_647;
/** Largest bigint (bigserial) id Herald handles: JavaScript numbers are exact up to here. */
export const BIGINT_ID_MAX = Number.MAX_SAFE_INTEGER;
