import { Device } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { Habit } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { Empty } from '@titanbot/contracts/google/protobuf/empty';
import { describe, expect, it } from 'vitest';
import { dateOnly, renderJson, renderTable } from './output.js';

describe('renderTable', () => {
  it('has one column per first-level scalar field and shows defaults that proto3 JSON omits', () => {
    const table = renderTable(Device, [
      Device.fromPartial({ uuid: 'a', physicalId: 7, activityType: 1, accountLogicalIds: [1, 2], etag: 'e1' }),
      Device.fromPartial({ uuid: 'bb', physicalId: 12, isActive: true, activityType: 2, goTimeLimitSeconds: 100, etag: 'e2' }),
    ]).split('\n');
    expect(table[0]?.split(/\s+/)).toEqual([
      'uuid', 'physicalId', 'isActive', 'isSsh', 'isNeedToUpdate', 'activityType', 'isFullServerDetection',
      'isAbleToClearCache', 'goTimeLimitSeconds', 'currentAccountLogicalId', 'etag',
    ]);
    expect(table[1]?.split(/\s+/)).toEqual(['a', '7', 'false', 'false', 'false', 'ACTIVITY_TYPE_ROWGPLAY', 'false', 'false', 'e1']);
    expect(table[2]).toMatch(/^bb +12 +true .* ACTIVITY_TYPE_AJAGPLAY .* 100 +e2$/);
  });

  it('leaves lists out, prints times as ISO and keeps multi-line text on one line', () => {
    const [header, row] = renderTable(Habit, [
      Habit.fromPartial({ uuid: 'h', comment: 'two\nlines', pixels: [{ x: 1, y: 1, rgbHex: 'FFFFFF' }], updatedAt: new Date('2024-01-02T03:04:05Z') }),
    ]).split('\n');
    expect(header).not.toContain('pixels');
    expect(row).toContain('two\\nlines');
    expect(row).toContain('2024-01-02T03:04:05.000Z');
  });

  it('prints the header alone for no items and nothing for a message without scalar fields', () => {
    expect(renderTable(Device, []).split('\n')).toHaveLength(1);
    expect(renderTable(Empty, [{}])).toBe('');
  });
});

describe('terminal control characters in daemon text', () => {
  // What a hostile daemon can put in a log line: clear the screen, set the title, a hyperlink,
  // overwrite its own row (CR, backspace), a C1 CSI, and right-to-left override.
  const hostile = 'ok\u001b[2J\u001b]0;owned\u0007\u001b]8;;http://x\u001b\\link\rother-uuid\b\u009b31m\u202eevil\u2066';

  it('are shown escaped in a table, never sent raw', () => {
    const comments = ['ok\u001b[2J\u001b]0;owned\u0007', 'a\rother-uuid\b', '\u009b31m\u202eevil\u2066'];
    const table = renderTable(Habit, comments.map((comment) => Habit.fromPartial({ uuid: 'h', comment })));
    expect(table).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e\u2066]/);
    expect(table).toContain('ok\\u001b[2J\\u001b]0;owned\\u0007');
    expect(table).toContain('a\\u000dother-uuid\\u0008');
    expect(table).toContain('\\u009b31m\\u202eevil\\u2066');
  });

  it('are escaped in JSON too, which still parses to the same text', () => {
    const json = renderJson(Habit, Habit.fromPartial({ uuid: 'h', comment: hostile }));
    expect(json).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e\u2066]/);
    expect(JSON.parse(json).comment).toBe(hostile);
  });
});

describe('renderJson', () => {
  it('uses the proto JSON names and enum names, and writes first-level defaults out (empty lists, flags), but no enum as a number', () => {
    const json = JSON.parse(renderJson(Device, Device.fromPartial({ uuid: 'd', physicalId: 3, activityType: 2 })));
    expect(json).toMatchObject({ uuid: 'd', physicalId: 3, activityType: 'ACTIVITY_TYPE_AJAGPLAY', isActive: false, accountLogicalIds: [] });
    expect(JSON.parse(renderJson(Device, Device.fromPartial({ uuid: 'd' })))).not.toHaveProperty('activityType');
  });

  it('shows a column its own way when asked: a code by name, a birth date as a day', () => {
    const [, row] = renderTable(Habit, [Habit.fromPartial({ uuid: 'h', priority: 3, updatedAt: new Date('1990-05-17T00:00:00Z') })], {
      priority: (_json, native) => `p${String(native)}`,
      updatedAt: dateOnly,
    }).split('\n');
    expect(row).toMatch(/ p3 /);
    expect(row).toContain('1990-05-17');
    expect(row).not.toContain('T00:00');
  });
});
