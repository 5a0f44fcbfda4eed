import { describe, expect, it } from 'vitest';

import { formatOptunaDatetime, parseOptunaDatetime } from './optunaDatetime.js';

describe('formatOptunaDatetime', () => {
  it("should write local time the way SQLAlchemy stores a naive datetime", () => {
    expect(formatOptunaDatetime(new Date(2026, 10, 5, 7, 8, 9, 12))).toBe('2026-11-05 07:08:09.012000');
  });
});

describe('parseOptunaDatetime', () => {
  it('should read microseconds, seconds without a fraction and a date alone', () => {
    expect(parseOptunaDatetime('2026-11-25 10:46:03.161906')).toEqual(new Date(2026, 10, 25, 10, 46, 3, 161));
    expect(parseOptunaDatetime('2026-11-25 10:46:03')).toEqual(new Date(2026, 10, 25, 10, 46, 3));
    expect(parseOptunaDatetime('2026-11-25')).toEqual(new Date(2026, 10, 25));
  });

  it('should give back what formatOptunaDatetime wrote', () => {
    const date = new Date(1999, 11, 31, 23, 59, 59, 999);
    expect(parseOptunaDatetime(formatOptunaDatetime(date))).toEqual(date);
  });

  it('should return undefined for text that is not a datetime', () => {
    expect(parseOptunaDatetime('yesterday')).toBeUndefined();
    expect(parseOptunaDatetime('')).toBeUndefined();
  });
});
