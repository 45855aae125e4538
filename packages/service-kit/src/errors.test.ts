import { readFile } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DomainError, ERROR_CATALOGUE, type Reason } from './errors.js';
import { errorReason, STATUS_OF_KIND, toStatusError } from './status.js';

describe('error catalogue', () => {
  it('is the table in docs/architecture.md, reason by reason with its code', async () => {
    const doc = await readFile(new URL('../../../docs/architecture.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| ([A-Z_]+) \|/gm)].map((m) => [m[1], m[2]]);
    const catalogue = Object.entries(ERROR_CATALOGUE).map(([reason, entry]) => [reason, status[STATUS_OF_KIND[entry.kind]]]);
    expect(rows).toEqual(catalogue);
  });

  it('sends every reason with its kind\'s status code and the reason in ErrorInfo', () => {
    for (const reason of Object.keys(ERROR_CATALOGUE) as Reason[]) {
      const sent = toStatusError(new DomainError(reason, 'because'));
      expect([status[sent.code], errorReason(sent)], reason).toEqual([status[STATUS_OF_KIND[ERROR_CATALOGUE[reason].kind]], reason]);
    }
  });
});
