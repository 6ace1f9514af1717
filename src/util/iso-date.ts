/**
 * `new Date(ms).toISOString()` without the `Date`: V8 formats that string through its date cache and `snprintf`, some
 * 8,000 instructions a call (callgrind, Node 24) — a dropzone's answer has two of them, a file's one, every log line
 * one. This computes the calendar date with integer arithmetic from the day count (the proleptic Gregorian calendar of
 * ECMA-262 §21.4.1, days to civil date as in Howard Hinnant's "chrono-Compatible Low-Level Date Algorithms") and builds
 * the string in one piece. Years 0000–9999 only; anything else (extended years, fractions, NaN) goes to `Date`, which
 * also throws the same RangeError for an invalid time.
 */
const DAY_MS = 86_400_000;
/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
const MIN_MS = -62_167_219_200_000;
const MAX_MS = 253_402_300_799_999;
const ZERO = 48;

export function isoDate(ms: number): string {
  if (!(ms >= MIN_MS && ms <= MAX_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let t = ms - days * DAY_MS; // ms into the day, 0..86399999
  // days since 1970-01-01 -> (year, month, day): eras of 400 years starting on March 1st, 0000
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097; // day of era, 0..146096
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100)); // day of the year from March 1st
  const mp = Math.floor((5 * doy + 2) / 153); // month from March, 0..11
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const milli = t % 1000;
  t = (t - milli) / 1000;
  const sec = t % 60;
  t = (t - sec) / 60;
  const min = t % 60;
  const hour = (t - min) / 60;
  return String.fromCharCode(
    ZERO + Math.floor(year / 1000),
    ZERO + (Math.floor(year / 100) % 10),
    ZERO + (Math.floor(year / 10) % 10),
    ZERO + (year % 10),
    45, // -
    ZERO + Math.floor(month / 10),
    ZERO + (month % 10),
    45,
    ZERO + Math.floor(day / 10),
    ZERO + (day % 10),
    84, // T
    ZERO + Math.floor(hour / 10),
    ZERO + (hour % 10),
    58, // :
    ZERO + Math.floor(min / 10),
    ZERO + (min % 10),
    58,
    ZERO + Math.floor(sec / 10),
    ZERO + (sec % 10),
    46, // .
    ZERO + Math.floor(milli / 100),
    ZERO + (Math.floor(milli / 10) % 10),
    ZERO + (milli % 10),
    90, // Z
  );
}
