import { describe, expect, it } from 'vitest';
import { MAX_STRING_CHARS, requestViolations } from './request-checks.js';

describe('requestViolations', () => {
  it('passes a request within every limit', () => {
    expect(requestViolations({ logicalId: 7, knownVersion: 'abc', requestId: '', sentAt: new Date(0), payload: new Uint8Array(3) })).toEqual([]);
  });

  it('names each violation by its proto path: members, list items, oneof members, Timestamps', () => {
    const long = 'x'.repeat(MAX_STRING_CHARS + 1);
    const found = requestViolations({
      knownVersion: long,
      habit: { rgbHex: 'a\0b', pixels: [{ x: 1 }, { x: Number.NaN }], trigger: { $case: 'shellCommand', value: long } },
      lines: [{ logTime: new Date(Date.UTC(10_000, 0, 1)) }],
      requestId: 'not-a-uuid',
      tags: ['ok', long],
    });
    expect(found.map((v) => v.field)).toEqual([
      'known_version',
      'habit.rgb_hex',
      'habit.pixels[1].x',
      'habit.trigger.shell_command',
      'lines[0].log_time',
      'request_id',
      'tags[1]',
    ]);
    expect(found[0]!.description).toBe(`must be at most ${MAX_STRING_CHARS} characters, was ${MAX_STRING_CHARS + 1}`);
  });

  it('allows a long-string field its own limit', () => {
    expect(requestViolations({ comment: 'x'.repeat(MAX_STRING_CHARS + 1) })).toEqual([]);
  });
});
