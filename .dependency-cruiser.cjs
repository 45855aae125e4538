/**
 * The layer rules of docs/architecture.md, checked by `npm run lint` (dependency-cruiser).
 * Type-only imports are allowed across layers: they carry no code, only the shape of a record.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No module reaches itself through its imports (type-only ones included): a cycle is two concerns that should be one, or a shared piece that belongs below both.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'domain-imports-only-domain',
      comment: 'domain/ holds plain rules: it imports nothing of ours but domain/ and the error catalogue (itself import-free).',
      severity: 'error',
      from: { path: '^services/[^/]+/src/domain/' },
      to: {
        path: '^(services|packages)/',
        pathNot: ['^services/[^/]+/src/domain/', '^packages/service-kit/(src|dist)/errors\\.(ts|js|d\\.ts)$'],
      },
    },
    {
      name: 'grpc-not-to-storage',
      comment: 'grpc/, legacy/, cdn/ and access/ reach storage through app/ (write) or the runtime they are given (read), never db/ or store/ directly.',
      severity: 'error',
      from: { path: '^services/[^/]+/src/(grpc|legacy|cdn|access)/' },
      to: { path: '^services/[^/]+/src/(db|store)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'adapters-apart',
      comment: 'The read service\'s daemon surfaces (grpc/, legacy/, cdn/) only translate; what they share (who the daemon is, its budgets, signed URLs, the runtime) is in access/, below them.',
      severity: 'error',
      from: { path: '^services/read/src/(grpc|legacy|cdn|access)/' },
      to: { path: '^services/read/src/(grpc|legacy|cdn)/', pathNot: ['^services/read/src/$1/'] },
    },
    {
      name: 'export-not-to-grpc',
      comment: 'export/ builds and encodes files; the transport layer above it uses it, not the other way round.',
      severity: 'error',
      from: { path: '^services/read/src/export/' },
      to: { path: '^services/read/src/grpc/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|gen)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'types', 'default'], extensions: ['.ts', '.js', '.d.ts'] },
  },
};
