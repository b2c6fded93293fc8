import { expect } from 'chai';
import { judge, type LoadReport } from '../../scripts/bench/support.js';

// A benchmark never calls a target met on a machine busier than its cores.

const load = (peak1m: number, cores = 2): LoadReport => ({ before: [peak1m, 0, 0], after: [peak1m, 0, 0], peak1m, cores, quiet: peak1m <= cores });

describe('bench.support (verdicts against the load average)', () => {
  it('calls a reached target met only on a quiet machine', () => {
    expect(judge(true, load(1.5))).to.equal('met');
    expect(judge(true, load(2))).to.equal('met');
    expect(judge(true, load(2.01))).to.equal('not judged');
  });

  it('reports a miss as a miss whatever the load', () => {
    expect(judge(false, load(0.2))).to.equal('missed');
    expect(judge(false, load(9))).to.equal('missed');
  });
});
