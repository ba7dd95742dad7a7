import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type DocumentNode,
  execute,
  GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
  parse,
  validate,
} from 'graphql';
import type { SandboxContext } from './context.js';
import type { FaultPlan } from './faults.js';
import { apiKeyFromAuthorization, readJsonBody, sendJson } from './http.js';

export interface GraphqlEndpoint {
  schema: GraphQLSchema;
  rootValue: Record<string, unknown>;
  faults: FaultPlan;
  /** When set, only this key is accepted; otherwise any well-formed key is. */
  apiKey: string | undefined;
  /** Builds the per-request context; the endpoint adds the API key and injected faults. */
  context: (apiKey: string, injectedUserErrors: ReadonlySet<string>) => SandboxContext;
  /** Called after a mutation ran, whatever its answer: state may have changed. */
  afterMutation: () => void;
}

interface GraphqlRequest {
  query: string;
  variables: Record<string, unknown> | undefined;
  operationName: string | undefined;
}

type Prepared =
  | { ok: true; document: DocumentNode; operation: OperationDefinitionNode; request: GraphqlRequest }
  | { ok: false; errors: readonly GraphQLError[] };

function asGraphqlRequest(body: unknown): GraphqlRequest | null {
  if (typeof body !== 'object' || body === null) return null;
  const { query, variables, operationName } = body as Record<string, unknown>;
  if (typeof query !== 'string') return null;
  const variablesOk = variables === undefined || variables === null || typeof variables === 'object';
  const nameOk = operationName === undefined || operationName === null || typeof operationName === 'string';
  if (!variablesOk || !nameOk) return null;
  return {
    query,
    variables: (variables ?? undefined) as Record<string, unknown> | undefined,
    operationName: operationName ?? undefined,
  };
}

function prepare(schema: GraphQLSchema, request: GraphqlRequest): Prepared {
  let document: DocumentNode;
  try {
    document = parse(request.query);
  } catch (error) {
    if (error instanceof GraphQLError) return { ok: false, errors: [error] };
    throw error;
  }
  const validationErrors = validate(schema, document);
  if (validationErrors.length > 0) return { ok: false, errors: validationErrors };
  const operation = getOperationAST(document, request.operationName);
  if (!operation) return { ok: false, errors: [new GraphQLError('operationName does not name one operation')] };
  return { ok: true, document, operation, request };
}

/** Faults are armed per root field name, e.g. `initiateTransferFrom…`, which is what a client calls. */
function rootFieldNames(operation: OperationDefinitionNode): string[] {
  return operation.selectionSet.selections.flatMap((selection) =>
    selection.kind === Kind.FIELD && selection.name.value !== '__typename' ? [selection.name.value] : [],
  );
}

function unauthorized(response: ServerResponse): void {
  response.setHeader('www-authenticate', 'Basic realm="highnote-sandbox"');
  sendJson(response, 401, { errors: [{ message: 'Unauthorized: send HTTP Basic auth with the API key as username' }] });
}

export async function handleGraphql(
  endpoint: GraphqlEndpoint,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const apiKey = apiKeyFromAuthorization(request.headers.authorization);
  if (apiKey === null || (endpoint.apiKey !== undefined && apiKey !== endpoint.apiKey)) return unauthorized(response);
  const body = await readJsonBody(request);
  if (!body.ok) return sendJson(response, body.status, { errors: [{ message: body.message }] });
  const graphqlRequest = asGraphqlRequest(body.value);
  if (!graphqlRequest) return sendJson(response, 400, { errors: [{ message: 'body must be {query, variables?}' }] });
  const prepared = prepare(endpoint.schema, graphqlRequest);
  if (!prepared.ok) return sendJson(response, 400, { errors: prepared.errors.map((error) => error.toJSON()) });

  const fault = endpoint.faults.take(rootFieldNames(prepared.operation));
  if (fault?.mode === 'error') {
    return sendJson(response, 500, { errors: [{ message: 'Internal server error (injected sandbox fault)' }] });
  }
  // Hold the request unanswered; the client's own timeout ends it, and close() destroys the socket.
  if (fault?.mode === 'timeout') return;

  const injectedUserErrors = new Set(fault?.mode === 'user_error' ? [fault.operation] : []);
  const result = await execute({
    schema: endpoint.schema,
    document: prepared.document,
    rootValue: endpoint.rootValue,
    contextValue: endpoint.context(apiKey, injectedUserErrors),
    variableValues: graphqlRequest.variables,
    operationName: graphqlRequest.operationName,
  });
  if (prepared.operation.operation === 'mutation') endpoint.afterMutation();
  // The work is done and recorded; the client just never hears about it.
  if (fault?.mode === 'lost_response') return void request.socket.destroy();
  const bug = result.errors?.find((error) => error.originalError && !(error.originalError instanceof GraphQLError));
  if (bug) {
    // A resolver threw: that is a sandbox bug, logged in full and never described to the client.
    console.error('highnote-sandbox: resolver failed', bug.originalError);
    return sendJson(response, 500, { errors: [{ message: 'Internal server error' }] });
  }
  // No data at all means the variables did not fit the operation: a bad request, not a result.
  const status = result.data === undefined ? 400 : 200;
  sendJson(response, status, { ...result, extensions: { requestId: randomUUID() } });
}
