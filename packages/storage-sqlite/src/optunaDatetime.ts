/**
 * Datetimes as Optuna's RDB storage keeps them: SQLAlchemy writes a naive `datetime.now()` (the
 * local time of the writing machine, no zone) to SQLite as `YYYY-MM-DD HH:MM:SS.ffffff`. We write
 * the same local-time text, so Python Optuna on the same machine reads the same instants.
 */

/** `date` as `YYYY-MM-DD HH:MM:SS.ffffff` in local time (microseconds are the milliseconds x 1000). */
export function formatOptunaDatetime(date: Date): string {
  const pad = (value: number, width = 2): string => String(value).padStart(width, '0');
  const day = `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return `${day} ${time}.${pad(date.getMilliseconds() * 1000, 6)}`;
}

// SQLAlchemy's SQLite DATETIME reader accepts a date alone, and seconds without a fraction.
const datetimePattern = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/;

/**
 * Reads a stored datetime as local time; sub-millisecond digits are dropped (a `Date` holds
 * milliseconds). Returns undefined for text that is not a datetime.
 */
export function parseOptunaDatetime(text: string): Date | undefined {
  const match = datetimePattern.exec(text);
  if (match === null) return undefined;
  const [, year, month, day, hours, minutes, seconds, fraction] = match;
  const milliseconds = fraction === undefined ? 0 : Math.floor(Number(fraction.padEnd(6, '0')) / 1000);
  const date = new Date(Number(year), Number(month) - 1, Number(day), Number(hours ?? 0), Number(minutes ?? 0), Number(seconds ?? 0), milliseconds);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
