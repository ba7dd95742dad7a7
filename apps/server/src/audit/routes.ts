import type { Db } from '../platform/db.js';
import type { App } from '../platform/http.js';

export function auditRoutes(_app: App, _deps: { db: Db }): void {}
