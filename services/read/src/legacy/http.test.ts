import { describe, expect, it } from 'vitest';
import { jsonDepthExceeds } from './http.js';

describe('jsonDepthExceeds', () => {
  it('counts arrays and objects inside one another, not brackets inside strings', () => {
    const bulk = JSON.stringify({ log_dto_list: [{ message: '[[[[{{{{ "quoted" \\ ]]]]' }] });
    expect(jsonDepthExceeds(bulk, 3)).toBe(false);
    expect(jsonDepthExceeds(bulk, 2)).toBe(true);
    expect(jsonDepthExceeds('"[[[[[[[[[["', 1)).toBe(false);
    expect(jsonDepthExceeds('[[[]],[[]]]', 3)).toBe(false);
    expect(jsonDepthExceeds('[[[[]]]]', 3)).toBe(true);
  });

  it('stops at the first level too deep: a 4 MiB body of brackets is judged without reading it all', () => {
    expect(jsonDepthExceeds('['.repeat(4 * 1024 * 1024), 8)).toBe(true);
  });
});
