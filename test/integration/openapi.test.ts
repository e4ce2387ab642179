/**
 * GET /api/openapi.json: a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator),
 * every schema in it valid JSON Schema 2020-12 (ajv), and every documented operation called
 * for real: each answer's status is documented for it and its body matches the documented
 * schema (successes and errors alike).
 *
 * Adding a route: add its examples to EXAMPLES below, keyed "METHOD /openapi/{path}". The test
 * fails for a documented operation without examples, and for one without at least one success
 * and one error example.
 */
import { expect } from 'chai';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { AUDIENCE, ISSUER, TEST_SECRET, mint } from '../helpers/auth.js';
import { Instance, stopAll } from '../helpers/instance.js';

const JWT_ENV = { AUTH: 'jwt', JWT_SECRET: TEST_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, MAX_BODY_BYTES: '4096' };

type Who = 'customer' | 'otherCustomer' | 'agent' | 'service' | null;

interface Example {
  /** Why this example: shown when it fails. */
  what: string;
  status: number;
  path: string;
  who: Who;
  /** A JSON body (sent as application/json), or raw text with its content type. */
  body?: unknown;
  raw?: { type: string; text: string };
  /** Other request headers (Idempotency-Key). */
  headers?: Record<string, string>;
}

/** What the examples refer to, made before they run. */
interface Context {
  room: string;
  message: string;
  deletable: string;
  /** A message of the agent's in the customer's conversation. */
  agents: string;
}

/** Example requests per documented operation, run in order. */
const EXAMPLES: Record<string, (c: Context) => Example[]> = {
  'POST /api/conversations': () => [
    { what: 'a customer creates one', status: 201, path: '/api/conversations', who: 'customer' },
    { what: 'a service creates one for a customer', status: 201, path: '/api/conversations', who: 'service', body: { owner: 'ann' } },
    { what: 'an owner that is no user id', status: 400, path: '/api/conversations', who: 'service', body: { owner: '' } },
    { what: 'bad JSON', status: 400, path: '/api/conversations', who: 'agent', raw: { type: 'application/json', text: '{' } },
    { what: 'no token', status: 401, path: '/api/conversations', who: null },
    { what: 'a body over MAX_BODY_BYTES', status: 413, path: '/api/conversations', who: 'agent', raw: { type: 'application/json', text: ' '.repeat(5000) } },
    { what: 'not JSON', status: 415, path: '/api/conversations', who: 'agent', raw: { type: 'text/plain', text: '{}' } },
  ],
  'GET /api/conversations/{id}': (c) => [
    { what: 'the whole history', status: 200, path: `/api/conversations/${c.room}`, who: 'customer' },
    { what: 'a page', status: 200, path: `/api/conversations/${c.room}?limit=1`, who: 'agent' },
    { what: 'a page before a message', status: 200, path: `/api/conversations/${c.room}?limit=5&before=${c.message}`, who: 'agent' },
    { what: 'a garbage cursor', status: 400, path: `/api/conversations/${c.room}?after=nope`, who: 'agent' },
    { what: 'no token', status: 401, path: `/api/conversations/${c.room}`, who: null },
    { what: 'another customer\'s', status: 404, path: `/api/conversations/${c.room}`, who: 'otherCustomer' },
    { what: 'an unknown cursor', status: 404, path: `/api/conversations/${c.room}?before=0loyw3v280000-nosuchnode`, who: 'agent' },
  ],
  'POST /api/conversations/{id}/messages': (c) => [
    { what: 'a customer posts', status: 201, path: `/api/conversations/${c.room}/messages`, who: 'customer', body: { content: 'hello' } },
    { what: 'a service posts as agent', status: 201, path: `/api/conversations/${c.room}/messages`, who: 'service', body: { sender: 'agent', content: 'hi' } },
    { what: 'blank content', status: 400, path: `/api/conversations/${c.room}/messages`, who: 'agent', body: { content: ' ' } },
    { what: 'no token', status: 401, path: `/api/conversations/${c.room}/messages`, who: null, body: { content: 'x' } },
    { what: 'a customer posting as agent', status: 403, path: `/api/conversations/${c.room}/messages`, who: 'customer', body: { sender: 'agent', content: 'x' } },
    { what: 'an unknown conversation', status: 404, path: '/api/conversations/nope/messages', who: 'agent', body: { content: 'x' } },
    { what: 'no body', status: 415, path: `/api/conversations/${c.room}/messages`, who: 'agent' },
    { what: 'with an Idempotency-Key', status: 201, path: `/api/conversations/${c.room}/messages`, who: 'customer', body: { content: 'once' }, headers: { 'idempotency-key': 'oa-1' } },
    { what: 'the same again', status: 200, path: `/api/conversations/${c.room}/messages`, who: 'customer', body: { content: 'once' }, headers: { 'idempotency-key': 'oa-1' } },
    { what: 'the same key, another content', status: 422, path: `/api/conversations/${c.room}/messages`, who: 'customer', body: { content: 'twice' }, headers: { 'idempotency-key': 'oa-1' } },
  ],
  'DELETE /api/conversations/{id}/messages/{messageId}': (c) => [
    { what: 'a customer deleting the agent\'s message', status: 403, path: `/api/conversations/${c.room}/messages/${c.agents}`, who: 'customer' },
    { what: 'an agent deletes', status: 204, path: `/api/conversations/${c.room}/messages/${c.deletable}`, who: 'agent' },
    { what: 'deleted already', status: 404, path: `/api/conversations/${c.room}/messages/${c.deletable}`, who: 'agent' },
    { what: 'bad percent-encoding', status: 400, path: `/api/conversations/${c.room}/messages/%zz`, who: 'agent' },
    { what: 'no token', status: 401, path: `/api/conversations/${c.room}/messages/${c.message}`, who: null },
  ],
  'GET /api/conversations': () => [
    { what: 'an agent\'s open inbox', status: 200, path: '/api/conversations?status=open&limit=5', who: 'agent' },
    { what: 'a customer\'s own', status: 200, path: '/api/conversations', who: 'customer' },
    { what: 'assigned to me', status: 200, path: '/api/conversations?assignee=me', who: 'agent' },
    { what: 'an unknown status', status: 400, path: '/api/conversations?status=nope', who: 'agent' },
    { what: 'a cursor it did not give', status: 400, path: '/api/conversations?cursor=garbage', who: 'agent' },
    { what: 'no token', status: 401, path: '/api/conversations', who: null },
  ],
  'PATCH /api/conversations/{id}': (c) => [
    { what: 'an agent takes it', status: 200, path: `/api/conversations/${c.room}`, who: 'agent', body: { status: 'pending', assignee: 'agent-1' } },
    { what: 'a service tags it', status: 200, path: `/api/conversations/${c.room}`, who: 'service', body: { metadata: { plan: 'pro' } } },
    { what: 'an empty change', status: 400, path: `/api/conversations/${c.room}`, who: 'agent', body: {} },
    { what: 'snoozed without snoozedUntil', status: 400, path: `/api/conversations/${c.room}`, who: 'agent', body: { status: 'snoozed' } },
    { what: 'no token', status: 401, path: `/api/conversations/${c.room}`, who: null, body: { status: 'open' } },
    { what: 'a customer', status: 403, path: `/api/conversations/${c.room}`, who: 'customer', body: { status: 'resolved' } },
    { what: 'an unknown conversation', status: 404, path: '/api/conversations/nope', who: 'agent', body: { status: 'open' } },
  ],
  'POST /api/conversations/{id}/read': (c) => [
    { what: 'the customer reads', status: 200, path: `/api/conversations/${c.room}/read`, who: 'customer', body: { upTo: c.message } },
    { what: 'no upTo', status: 400, path: `/api/conversations/${c.room}/read`, who: 'agent', body: {} },
    { what: 'no token', status: 401, path: `/api/conversations/${c.room}/read`, who: null, body: { upTo: c.message } },
    { what: 'an unknown message', status: 404, path: `/api/conversations/${c.room}/read`, who: 'agent', body: { upTo: '0loyw3v280000-nosuchnode' } },
  ],
  'PATCH /api/conversations/{id}/messages/{messageId}': (c) => [
    { what: 'the customer edits its own', status: 200, path: `/api/conversations/${c.room}/messages/${c.message}`, who: 'customer', body: { content: 'first, edited' } },
    { what: 'blank content', status: 400, path: `/api/conversations/${c.room}/messages/${c.message}`, who: 'agent', body: { content: ' ' } },
    { what: 'no token', status: 401, path: `/api/conversations/${c.room}/messages/${c.message}`, who: null, body: { content: 'x' } },
    { what: 'a customer editing the agent\'s', status: 403, path: `/api/conversations/${c.room}/messages/${c.agents}`, who: 'customer', body: { content: 'x' } },
    { what: 'an unknown message', status: 404, path: `/api/conversations/${c.room}/messages/0loyw3v280000-nosuchnode`, who: 'agent', body: { content: 'x' } },
  ],
  'POST /api/auth/revocations': () => [
    { what: 'a service revokes a token', status: 201, path: '/api/auth/revocations', who: 'service', body: { jti: 'openapi-1' } },
    { what: 'again', status: 200, path: '/api/auth/revocations', who: 'service', body: { jti: 'openapi-1' } },
    { what: 'both jti and sub', status: 400, path: '/api/auth/revocations', who: 'service', body: { jti: 'a', sub: 'b' } },
    { what: 'no token', status: 401, path: '/api/auth/revocations', who: null, body: { sub: 'x' } },
    { what: 'an agent', status: 403, path: '/api/auth/revocations', who: 'agent', body: { sub: 'x' } },
  ],
};

interface Operation {
  responses: Record<string, { content?: { 'application/json'?: { schema: object } } }>;
}

describe('OpenAPI document (GET /api/openapi.json)', function () {
  this.timeout(30_000);
  afterEach(() => stopAll());

  it('is valid OpenAPI 3.1, and every documented operation answers as documented (status and body schema)', async () => {
    const node = await Instance.start({ env: JWT_ENV });
    const tokens: Record<Exclude<Who, null>, string> = {
      customer: await mint({ sub: 'ann', role: 'customer' }),
      otherCustomer: await mint({ sub: 'bob', role: 'customer' }),
      agent: await mint({ sub: 'agent-1', role: 'agent' }),
      service: await mint({ sub: 'backend', role: 'service' }),
    };
    const call = async (method: string, path: string, who: Who, body?: unknown, raw?: Example['raw'], extra: Record<string, string> = {}) => {
      const headers: Record<string, string> = { ...extra };
      if (who !== null) headers.authorization = `Bearer ${tokens[who]}`;
      const text = raw?.text ?? (body === undefined ? undefined : JSON.stringify(body));
      if (raw) headers['content-type'] = raw.type;
      else if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${node.httpUrl}${path}`, { method, headers, body: text });
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    };

    const docAnswer = await call('GET', '/api/openapi.json', null);
    expect(docAnswer.status, 'the document needs no token').to.equal(200);
    const doc = JSON.parse(docAnswer.text) as { openapi: string; paths: Record<string, Record<string, Operation>> };
    expect(doc.openapi).to.equal('3.1.0');
    const verdict = await new Validator().validate(doc);
    expect(verdict.errors, 'OpenAPI validation errors').to.equal(undefined);
    expect(verdict.valid).to.equal(true);

    const room = JSON.parse((await call('POST', '/api/conversations', 'customer')).text).id as string;
    const post = async (content: string, who: Who = 'customer') => JSON.parse((await call('POST', `/api/conversations/${room}/messages`, who, { content })).text).id as string;
    const context: Context = { room, message: await post('first'), deletable: await post('to delete'), agents: await post('from the agent', 'agent') };

    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op })));
    expect(documented.length, 'documented operations').to.be.at.least(5);
    expect(Object.keys(EXAMPLES).filter((key) => !documented.some((d) => d.key === key)), 'examples for operations the document does not have').to.deep.equal([]);
    for (const { key, op } of documented) {
      expect(EXAMPLES, `no examples for ${key}: add them to EXAMPLES in test/integration/openapi.test.ts`).to.have.property(key);
      const examples = EXAMPLES[key](context);
      expect(examples.some((e) => e.status < 300), `${key}: a success example`).to.equal(true);
      expect(examples.some((e) => e.status >= 400), `${key}: an error example`).to.equal(true);
      const method = key.split(' ')[0];
      for (const e of examples) {
        const what = `${key} (${e.what})`;
        const res = await call(method, e.path, e.who, e.body, e.raw, e.headers);
        expect(res.status, `${what}: status; body ${res.text.slice(0, 200)}`).to.equal(e.status);
        const response = op.responses[String(e.status)];
        expect(response, `${what}: status ${e.status} is documented`).to.not.equal(undefined);
        const schema = response.content?.['application/json']?.schema;
        if (schema === undefined) {
          expect(res.text, `${what}: no body documented, none sent`).to.equal('');
          continue;
        }
        expect(res.type, `${what}: content type`).to.match(/^application\/json/);
        const validate = ajv.compile(schema);
        const body: unknown = JSON.parse(res.text);
        expect(validate(body), `${what}: ${res.text.slice(0, 200)} against its schema: ${ajv.errorsText(validate.errors)}`).to.equal(true);
      }
    }
  });
});
