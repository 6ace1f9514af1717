import { BYTES_PER_GB } from '../config/schema.js';
import { AppError } from './errors.js';

/** Milliseconds in one day. */
export const DAY_MS = 86_400_000;
/** One billing month is 30 days. */
export const DAYS_PER_MONTH = 30;
/** GB-months are stored as integers of one millionth to keep arithmetic exact. */
export const MICRO = 1_000_000;

/** The cost in micro GB-months of holding `gb` for `days`: `gb × days / 30`, rounded to the nearest micro unit. */
export function costMicro(gb: number, days: number): number {
  return Math.round((gb * days * MICRO) / DAYS_PER_MONTH);
}

/** Micro GB-months → GB-months as a plain number (6 decimals at most). */
export function toGbMonths(micro: number): number {
  return Math.round(micro) / MICRO;
}

/** Largest GB-months amount one request may move: its micro units (10^15) stay exact integers in JS and SQLite. */
export const MAX_GB_MONTHS = 1_000_000_000;

/** GB-months → micro units; throws VALIDATION for negative, non-finite or larger than {@link MAX_GB_MONTHS} amounts. */
export function fromGbMonths(gbMonths: number): number {
  if (!Number.isFinite(gbMonths) || gbMonths < 0 || gbMonths > MAX_GB_MONTHS)
    throw new AppError('VALIDATION', `gbMonths must be a number between 0 and ${MAX_GB_MONTHS}`, { field: 'gbMonths' });
  return Math.round(gbMonths * MICRO);
}

/** Bytes of a dropzone of `gb` GB (1 GB = 10^9 bytes). */
export function gbToBytes(gb: number): number {
  return Math.round(gb * BYTES_PER_GB);
}

/** Fixed part of the space every file costs on top of its bytes (its row, its grants, its place in lists and ZIPs). */
export const FILE_OVERHEAD_BYTES = 1000;

/**
 * The space a file costs in its dropzone's `usedSpace`: its size plus {@link FILE_OVERHEAD_BYTES} plus the UTF-8
 * length of its name and type, so that empty files are not free. The one rule, used when space is reserved and when
 * it is released (name, type and size never change after the reservation).
 */
export function fileCost(f: { size: number; name: string; type: string }): number {
  return f.size + FILE_OVERHEAD_BYTES + Buffer.byteLength(f.name, 'utf8') + Buffer.byteLength(f.type, 'utf8');
}

/** Bounds that operators configure (`limits.*`). */
export interface QuotaBounds {
  minGb: number;
  maxGb: number;
  minDays: number;
  maxDays: number;
}

/** Throws VALIDATION naming the field when `gb` or `days` lie outside the configured bounds. */
export function checkBounds(b: QuotaBounds, gb: number | undefined, days: number | undefined): void {
  if (gb !== undefined && (gb < b.minGb || gb > b.maxGb))
    throw new AppError('VALIDATION', `gb must be between ${b.minGb} and ${b.maxGb} (got ${gb})`, { field: 'gb', min: b.minGb, max: b.maxGb });
  if (days !== undefined && (days < b.minDays || days > b.maxDays))
    throw new AppError('VALIDATION', `days must be between ${b.minDays} and ${b.maxDays} (got ${days})`, { field: 'days', min: b.minDays, max: b.maxDays });
}
