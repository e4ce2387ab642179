#!/usr/bin/env node
// chatmesh entry point: reads the environment, starts one node, stops it cleanly on SIGINT/SIGTERM.
// Configuration: see the README's table of environment variables.
let lib;
try {
  lib = await import('./dist/lib/index.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('chatmesh: dist/ is missing. Run `npm install` (it builds the TypeScript) and try again.');
    process.exit(1);
  }
  throw err;
}
const { ChatNode, optionsFromEnv, ConfigError } = lib;

let options;
try {
  options = optionsFromEnv(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`chatmesh: bad configuration: ${err.message}`);
    process.exit(1);
  }
  throw err;
}

const node = new ChatNode(options);
try {
  await node.start();
} catch (err) {
  const hint = err && err.code === 'EADDRINUSE' ? ` (port in use: set PORT to another one)` : '';
  console.error(`chatmesh: cannot start: ${err && err.message}${hint}`);
  await node.close().catch(() => {});
  process.exit(1);
}

let stopping = false;
function stop(signal) {
  if (stopping) {
    // A second signal: the user wants out now.
    process.exit(1);
  }
  stopping = true;
  node.log.info('signal received', { signal });
  node.close().then(
    () => process.exit(0),
    (err) => {
      console.error(`chatmesh: error while stopping: ${err && err.message}`);
      process.exit(1);
    },
  );
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
