/**
 * Structured logging through pino. One JSON object per line:
 *   {"level":"info","time":"2026-11-23T17:41:03.869Z","node":"bdc2c7c8a1bf","msg":"peer up","peer":"…"}
 * `level` is a label (debug, info, warn, error), `time` an ISO date, `node` the node id on
 * every line, then the fields given; Error values become {type, message, stack}. When the
 * stream is a terminal the lines are made readable by pino-pretty, in this process and
 * synchronously (its formatter, not its worker-thread transport).
 *
 * Lines are written synchronously: a process that exits or is killed right after logging
 * has written the line (logs are low-volume, so this costs nothing that matters).
 * Each node owns its logger: no global state but the shared stdout destination.
 */
import { destination, pino, stdSerializers, stdTimeFunctions, type DestinationStream } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { LogLevel } from './config.js';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  nodeId: string;
  level: LogLevel;
  /** Where lines go. @default process.stdout (written synchronously) */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Readable lines instead of JSON. @default the stream is a terminal */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const isTTY = Boolean((options.stream ?? process.stdout).isTTY);
  const out: DestinationStream = options.stream ?? stdoutDestination();
  const pretty = options.pretty ?? isTTY;
  const logger = pino(
    {
      level: options.level,
      base: { node: options.nodeId },
      // pino-pretty reads the numeric level and epoch time; JSON lines carry the label and an ISO date.
      timestamp: pretty ? stdTimeFunctions.epochTime : stdTimeFunctions.isoTime,
      formatters: {
        ...(pretty ? {} : { level: (label: string) => ({ level: label }) }),
        log: serializeErrors,
      },
    },
    pretty ? prettyDestination(out, isTTY) : out,
  );
  const method =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: LogFields): void => {
      if (fields) logger[level](fields, msg);
      else logger[level](msg);
    };
  return { debug: method('debug'), info: method('info'), warn: method('warn'), error: method('error') };
}

/** Any Error among the fields is logged with its type, message and stack (`err` by pino's own serializer). */
function serializeErrors(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value instanceof Error && key !== 'err') {
      out ??= { ...fields };
      out[key] = stdSerializers.err(value);
    }
  }
  return out ?? fields;
}

/** Readable lines: `12:00:01.234 INFO: [node] msg {"field":…}`, formatted in-line (no worker thread, nothing buffered). */
function prettyDestination(out: DestinationStream, colorize: boolean): DestinationStream {
  const format = prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,node',
    messageFormat: '[{node}] {msg}',
    singleLine: true,
  });
  return { write: (line: string) => void out.write(format(line)) };
}

let stdout: DestinationStream | null = null;

/** fd 1, written synchronously; one for every logger of the process. */
function stdoutDestination(): DestinationStream {
  if (!stdout) {
    const dest = destination({ dest: 1, sync: true });
    // A closed stdout (EPIPE) must not take the server down with it.
    dest.on('error', () => {});
    stdout = dest;
  }
  return stdout;
}
