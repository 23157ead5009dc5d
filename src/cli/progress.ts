// Shared progress bar for CLI commands, built on cli-progress.
//
// Writes to stderr (or the given stream). When that stream is not a TTY the bar is silent (a no-op),
// unless `force` is set, in which case cli-progress's non-TTY mode prints one status line every
// `notTTYScheduleMs` instead of redrawing in place.
import cliProgress from 'cli-progress';

export type ProgressUnit = 'bytes' | 'items';

export interface Progress {
  /** Sets the current (absolute) value. */
  update(value: number): void;
  /** Adds `delta` (default 1) to the current value. */
  increment(delta?: number): void;
  /** Stops the bar and ends its line. Safe to call more than once. */
  stop(): void;
  /** False for the no-op bar (non-TTY stream and not forced). */
  readonly active: boolean;
}

export interface ProgressOptions {
  /** Output stream; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Draw even when the stream is not a TTY. */
  force?: boolean;
  /** Initial value (e.g. bytes already present when resuming). */
  start?: number;
  /** Interval between status lines on a non-TTY stream when forced; default 2000 ms. */
  notTTYScheduleMs?: number;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** Human-readable binary size: 0 B, 1023 B, 1.0 KiB, 2.27 GiB. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B`;
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${BYTE_UNITS[i]}`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

const NOOP: Progress = {
  update() {},
  increment() {},
  stop() {},
  active: false,
};

/**
 * Creates and starts a progress bar with `total` units of work.
 *
 * Bytes bars show `label [bar] 42% 1.2 MiB/2.9 MiB 3.4 MiB/s ETA 5s`; item bars show `label [bar] 42% 21/50 ETA 5s`.
 */
export function createProgress(label: string, total: number, unit: ProgressUnit, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const isTTY = (stream as { isTTY?: boolean }).isTTY === true;
  if (!isTTY && !options.force) return NOOP;

  const startValue = options.start ?? 0;
  const startedAt = Date.now();
  let value = startValue;
  let stopped = false;

  const format: cliProgress.GenericFormatter = (opts, params) => {
    const pct = params.total > 0 ? Math.floor((params.value / params.total) * 100) : 100;
    const bar = cliProgress.Format.BarFormat(params.progress, opts);
    const elapsed = (Date.now() - startedAt) / 1000;
    const rate = elapsed > 0 ? (params.value - startValue) / elapsed : 0;
    const eta = rate > 0 ? (params.total - params.value) / rate : Number.NaN;
    const amount =
      unit === 'bytes'
        ? `${formatBytes(params.value)}/${formatBytes(params.total)} ${formatBytes(rate)}/s`
        : `${params.value}/${params.total}`;
    return `${label} [${bar}] ${String(pct).padStart(3)}% ${amount} ETA ${formatDuration(eta)}`;
  };

  const bar = new cliProgress.SingleBar({
    stream,
    format,
    barsize: 24,
    fps: 8,
    noTTYOutput: !isTTY,
    notTTYSchedule: options.notTTYScheduleMs ?? 2000,
    // cli-progress would otherwise install once-only SIGINT/SIGTERM listeners, which swallow the first Ctrl-C.
    gracefulExit: false,
    hideCursor: false,
    linewrap: false,
  });
  bar.start(Math.max(0, total), startValue);

  return {
    active: true,
    update(n: number) {
      if (stopped) return;
      value = n;
      bar.update(value);
    },
    increment(delta = 1) {
      if (stopped) return;
      value += delta;
      bar.update(value);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
