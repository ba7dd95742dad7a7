import { parseArgs } from 'node:util';
import { DEFAULT_HOST, startSandbox } from './server.js';

/** A fixed port for manual runs so a local Tranche config can point at it; tests use port 0. */
const DEFAULT_CLI_PORT = 4010;
const MAX_PORT = 65_535;

function parsePort(value: string | undefined): number {
  if (value === undefined) return DEFAULT_CLI_PORT;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) throw new Error(`--port must be 0-${MAX_PORT}`);
  return port;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, host: { type: 'string' }, 'state-file': { type: 'string' } },
  });
  const stateFile = values['state-file'];
  const sandbox = await startSandbox({
    port: parsePort(values.port),
    host: values.host ?? DEFAULT_HOST,
    ...(stateFile === undefined ? {} : { stateFile }),
  });
  console.log(`Highnote sandbox listening: ${sandbox.graphqlUrl}`);
  if (stateFile !== undefined) console.log(`Highnote sandbox state file: ${stateFile}`);
  const stop = () => {
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main();
