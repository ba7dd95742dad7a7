export { type RunningSandbox, type SandboxOptions, startSandbox } from './server.js';
