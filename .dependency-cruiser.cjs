// Herald's import rules, checked in CI by `npm run deps` (dependency-cruiser).
// Capabilities live in src/<folder>; src/cli is the composition root that
// wires them; src/jobs, src/db and src/lib are mechanisms that know no
// capability. Type-only imports count for circles (they still couple files)
// but not for "loads heavy code" rules.
const CAPABILITIES = '(admin|doctor|exporter|http|invoices|mail|providers|queue|reports|sandbox|storage|taric)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import circles anywhere: a circle means two modules are one, or a type belongs in a module of its own.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'nothing-imports-the-composition-root',
      severity: 'error',
      comment: 'src/cli wires every capability; a capability importing it would import all the others.',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'mechanisms-know-no-capability',
      severity: 'error',
      comment: 'src/jobs, src/db and src/lib serve every capability and name none of them.',
      from: { path: '^src/(jobs|db|lib)/' },
      to: { path: `^src/${CAPABILITIES}/` },
    },
    {
      name: 'runners-come-from-the-jobs-runtime',
      severity: 'error',
      comment: 'Outside src/jobs, runners are made by the composition root\'s jobs runtime (every kind, every hook), never by the runner or the inline loop directly.',
      from: { path: '^src/', pathNot: '^src/jobs/' },
      to: { path: '^src/jobs/runtime/(runner|inline|batch-loop|execute|sweeper)\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 's3rver-only-in-the-sandbox',
      severity: 'error',
      comment: 's3rver (and busboy/dicer/fast-xml-parser 3 under it) is a test stand-in: only src/sandbox may load it.',
      from: { path: '^src/', pathNot: '^src/sandbox/' },
      to: { path: 'node_modules/s3rver/' },
    },
    {
      name: 'src-does-not-import-tests',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|scripts|examples)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
