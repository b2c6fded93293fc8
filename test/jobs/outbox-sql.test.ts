import { expect } from 'chai';
import { outboxJobsSql } from '../../src/jobs/index.js';
import { useTestDb } from '../helpers/db.js';

describe('jobs.outboxJobsSql', () => {
  const t = useTestDb(import.meta.url);
  const valid = { kind: 'probe-kind', from: 'made', idColumn: 'id', payloadKey: 'thingId', subjectType: 'thing' };

  it("writes one pending job per row of the caller's CTE, in the caller's statement", async () => {
    const { rows } = await t.get().db.raw(
      `WITH made AS (SELECT g AS id FROM generate_series(41, 43) AS g), queued AS (${outboxJobsSql(valid)}) SELECT count(*)::int AS n FROM made`,
    );
    expect(rows[0].n).to.equal(3);
    const jobs = await t.get().db('jobs').where({ kind: 'probe-kind' }).orderBy('id').select('payload', 'subject_type', 'subject_id', 'status');
    expect(jobs).to.deep.equal([41, 42, 43].map((id) => ({ payload: { thingId: id }, subject_type: 'thing', subject_id: String(id), status: 'pending' })));
  });

  it('refuses anything but a plain name in each place it puts text into SQL', () => {
    for (const [field, value] of [
      ['kind', "x'; DROP TABLE jobs; --"], ['from', 'made m'], ['idColumn', 'id)'], ['payloadKey', "a'"], ['subjectType', 'thing type'],
    ] as const) {
      expect(() => outboxJobsSql({ ...valid, [field]: value }), field).to.throw(TypeError, new RegExp(`${field} .* is not a plain name`));
    }
  });
});
