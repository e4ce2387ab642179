/**
 * A small structured logger. One JSON object per line (node id on every line), or a
 * readable line when writing to a terminal. Each node owns its logger: no global state.
 */
import type { LogLevel } from './config.js';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

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
  /** Where lines go. @default process.stdout */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Readable lines instead of JSON. @default the stream is a terminal */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const stream = options.stream ?? process.stdout;
  const pretty = options.pretty ?? Boolean(stream.isTTY);
  const min = RANK[options.level];
  const write = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[level] < min) return;
    const time = new Date();
    if (pretty) {
      const extra = fields ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ') : '';
      stream.write(`${time.toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} [${options.nodeId}] ${msg}${extra}\n`);
    } else {
      stream.write(JSON.stringify({ time: time.toISOString(), level, node: options.nodeId, msg, ...fields }) + '\n');
    }
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
  };
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  return typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : JSON.stringify(v);
}
