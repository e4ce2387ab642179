// What the scripts that start a local cluster share: their flags and a free port.
import net from 'node:net';
import { once } from 'node:events';

/** `--name value` pairs of the command line, as an object (values as given, strings). */
export function flagArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(argv.reduce((acc, a, i, all) => (a.startsWith('--') && acc.push([a.slice(2), all[i + 1]]), acc), []));
}

/** A TCP port free on 127.0.0.1 now (the OS picks it). */
export async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  s.close();
  await once(s, 'close');
  return port;
}
