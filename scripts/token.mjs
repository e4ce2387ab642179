#!/usr/bin/env node
// npm run token: prints an HS256 token signed with JWT_SECRET, for trying AUTH=jwt by hand.
//   JWT_SECRET=... npm run -s token -- --sub alice --role customer [--rooms lobby,team:*] [--ttl 3600] [--jti X]
// --iss/--aud default to JWT_ISSUER/JWT_AUDIENCE so the token fits the server's settings.
// The token alone goes to stdout (TOKEN=$(npm run -s token -- ...)); its claims go to stderr.
import { SignJWT } from 'jose';

const USAGE = 'usage: JWT_SECRET=<at least 32 bytes> npm run -s token -- --sub <id> --role customer|agent|service [--rooms a,team:*] [--ttl 3600] [--jti <id>] [--iss <issuer>] [--aud <audience>]';
const FLAGS = new Set(['sub', 'role', 'rooms', 'ttl', 'jti', 'iss', 'aud']);
const ROLES = ['customer', 'agent', 'service'];

function fail(message) {
  process.stderr.write(`token: ${message}\n${USAGE}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const m = /^--([a-z]+)(?:=(.*))?$/s.exec(arg);
    if (!m || !FLAGS.has(m[1])) fail(`unknown argument ${JSON.stringify(arg)}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined || (m[2] === undefined && value.startsWith('--'))) fail(`--${m[1]} needs a value`);
    args[m[1]] = value;
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const secret = process.env.JWT_SECRET;
if (!secret) fail('JWT_SECRET is not set (the same secret the server uses with AUTH=jwt)');
const key = new TextEncoder().encode(secret);
if (key.length < 32) fail(`JWT_SECRET must be at least 32 bytes, is ${key.length}`);
if (!args.sub || args.sub.length > 128) fail('--sub is required (1 to 128 characters)');
if (!ROLES.includes(args.role)) fail(`--role must be one of ${ROLES.join(', ')}`);
const ttl = Number(args.ttl ?? 3600);
if (!Number.isInteger(ttl) || ttl < 1) fail('--ttl must be a whole number of seconds ≥ 1');
// The server refuses longer lifetimes (JWT_MAX_LIFETIME_SEC, default one day): say so now, not at connect time.
const maxTtl = Number(process.env.JWT_MAX_LIFETIME_SEC || 86400);
if (ttl > maxTtl) fail(`--ttl ${ttl} is over JWT_MAX_LIFETIME_SEC (${maxTtl}); the server would refuse the token`);

const now = Math.floor(Date.now() / 1000);
const claims = { sub: args.sub, role: args.role, iat: now, exp: now + ttl };
if (args.rooms !== undefined) claims.rooms = args.rooms.split(',').map((r) => r.trim()).filter((r) => r !== '');
if (args.jti !== undefined) claims.jti = args.jti;
const iss = args.iss ?? process.env.JWT_ISSUER;
const aud = args.aud ?? process.env.JWT_AUDIENCE;
if (iss) claims.iss = iss;
if (aud) claims.aud = aud;

const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);
process.stderr.write(`${JSON.stringify(claims)}\n`);
process.stdout.write(`${token}\n`);
