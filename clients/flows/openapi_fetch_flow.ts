// The mobile flow through openapi-fetch, typed by what openapi-typescript generated from the
// served document: paths, bodies, answers, problem codes and the declared response headers.
// Run by clients/run.py (type-checked by tsc first) with the live server and its users.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import createClient from 'openapi-fetch';

import type { components, operations, paths } from '../generated/openapi-typescript';

const BASE = process.env.OPPLY_BASE_URL!;
const PASSWORD = process.env.OPPLY_PASSWORD!;
const CUSTOMER = process.env.OPPLY_CUSTOMER!;
const STAFF = process.env.OPPLY_STAFF!;
const TAG = `OF-${randomUUID().slice(0, 6)}`.toUpperCase();

type Problem = components['schemas']['Problem'];
// The headers a response declares, without the catch-all index signature: reading one the
// document does not declare does not compile.
type Declared<T> = { [K in keyof T as string extends K ? never : K]: T[K] };

function header<T>(response: Response, name: keyof Declared<T> & string): string | null {
  return response.headers.get(name);
}

const step = (message: string) => console.log(`  openapi-fetch: ${message}`);
const anonymous = createClient<paths>({ baseUrl: BASE });
const as = (access: string) =>
  createClient<paths>({ baseUrl: BASE, headers: { Authorization: `Bearer ${access}` } });

async function tokens(username: string): Promise<components['schemas']['TokenPair']> {
  const { data, error } = await anonymous.POST('/api/token/', {
    body: { username, password: PASSWORD },
  });
  assert.ok(data, JSON.stringify(error));
  return data;
}

step('log in, refresh; the old refresh token is then refused');
const first = await tokens(CUSTOMER);
const rotated = await anonymous.POST('/api/token/refresh/', { body: { refresh: first.refresh } });
assert.ok(rotated.data?.access);
const again = await anonymous.POST('/api/token/refresh/', { body: { refresh: first.refresh } });
assert.equal(again.response.status, 401);
// openapi-fetch types `error` as any of the operation's problems; the status picks the one.
type Refused = operations['refreshTokens']['responses'][401]['content']['application/problem+json'];
const refused: 'invalid_token' = (again.error as Refused).code;
assert.equal(refused, 'invalid_token');
// A refresh token used twice ends that whole login: log in again.
const customer = as((await tokens(CUSTOMER)).access);

step('staff create two products');
const staff = as((await tokens(STAFF)).access);
const created: components['schemas']['Product'][] = [];
for (const [name, stock] of [
  ['Oat flour 25kg', 5],
  ['Rye flakes 10kg', 3],
] as const) {
  const { data, response } = await staff.POST('/api/v1/products/', {
    body: { name: `${name} ${TAG}`, price: '12.50', vat_rate: '7.00', quantity_in_stock: stock },
  });
  assert.equal(response.status, 201);
  assert.ok(data);
  type Created = operations['createProduct']['responses'][201]['headers'];
  assert.equal(header<Created>(response, 'Location'), `/api/v1/products/${data.id}/`);
  created.push(data);
}
const [oat, rye] = created;

step('product pages');
const page1 = await customer.GET('/api/v1/products/', {
  params: { query: { search: TAG, page_size: 1 } },
});
assert.equal(page1.data?.count, 2);
assert.deepEqual(
  page1.data?.results.map((p) => p.id),
  [oat.id],
);
assert.ok(page1.data?.next);
assert.equal(page1.data?.previous, null);
const page2 = await customer.GET('/api/v1/products/', {
  params: { query: { search: TAG, page_size: 1, page: 2 } },
});
assert.deepEqual(
  page2.data?.results.map((p) => p.id),
  [rye.id],
);
assert.equal(page2.data?.next, null);

step('product detail with its ETag, then 304');
const detail = await anonymous.GET('/api/v1/products/{product_id}/', {
  params: { path: { product_id: oat.id } },
});
assert.equal(detail.data?.quantity_in_stock, 5);
type Detail = operations['getProduct']['responses'][200]['headers'];
const etag = header<Detail>(detail.response, 'ETag');
assert.ok(etag);
const unchanged = await anonymous.GET('/api/v1/products/{product_id}/', {
  params: { path: { product_id: oat.id }, header: { 'If-None-Match': etag } },
});
assert.equal(unchanged.response.status, 304);
assert.equal(unchanged.data, undefined);

step('an order with an Idempotency-Key, then its replay');
const key = randomUUID();
const order = {
  lines: [
    { product_id: oat.id, quantity: 3 },
    { product_id: rye.id, quantity: 1 },
  ],
};
type Placed = operations['placeOrder']['responses'][201]['headers'];
const placed = await customer.POST('/api/v1/orders/', {
  params: { header: { 'Idempotency-Key': key } },
  body: order,
});
assert.equal(placed.response.status, 201);
assert.ok(placed.data);
assert.equal(placed.data.total, '53.51');
assert.equal(header<Placed>(placed.response, 'Idempotent-Replayed'), null);
const replay = await customer.POST('/api/v1/orders/', {
  params: { header: { 'Idempotency-Key': key } },
  body: order,
});
assert.equal(replay.response.status, 201);
const replayed: Placed['Idempotent-Replayed'] | null = header<Placed>(
  replay.response,
  'Idempotent-Replayed',
) as Placed['Idempotent-Replayed'] | null;
assert.equal(replayed, 'true');
assert.equal(replay.data?.id, placed.data.id);

step('409 out_of_stock, parsed as the error model');
const short = await customer.POST('/api/v1/orders/', {
  body: { lines: [{ product_id: oat.id, quantity: 3 }] },
});
assert.equal(short.response.status, 409);
type Conflict = operations['placeOrder']['responses'][409]['content']['application/problem+json'];
const problem: Problem & Conflict = short.error as Conflict;
// Typed as exactly the codes the document lists for this answer (a wider type would not compile).
const conflict: 'out_of_stock' | 'request_in_progress' = problem.code;
assert.equal(conflict, 'out_of_stock');
assert.deepEqual(problem.errors, [{ product_id: oat.id, requested: 3, available: 2 }]);

step('history, detail, cancel');
const history = await customer.GET('/api/v1/orders/');
assert.deepEqual(
  history.data?.results.map((o) => o.id),
  [placed.data.id],
);
const seen = await customer.GET('/api/v1/orders/{order_id}/', {
  params: { path: { order_id: placed.data.id } },
});
assert.deepEqual(
  seen.data?.lines.map((l) => l.quantity),
  [3, 1],
);
assert.match(seen.data!.created_at, /Z$/);
const cancelled = await customer.POST('/api/v1/orders/{order_id}/cancel/', {
  params: { path: { order_id: placed.data.id } },
});
assert.equal(cancelled.data?.status, 'cancelled');
assert.ok(cancelled.data?.cancelled_at);
const restocked = await anonymous.GET('/api/v1/products/{product_id}/', {
  params: { path: { product_id: oat.id } },
});
assert.equal(restocked.data?.quantity_in_stock, 5);

step('an address, an order to it, a reorder');
const added = await customer.POST('/api/v1/me/addresses/', {
  body: {
    recipient: 'Jane Baker',
    company: 'Kaffee & Co',
    line1: '12 Mill Lane',
    postal_code: 'EC1A 1BB',
    city: 'London',
    country: 'gb',
  },
});
assert.equal(added.response.status, 201);
assert.ok(added.data);
assert.equal(added.data.country, 'GB');
assert.equal(added.data.is_default, true);
const book = await customer.GET('/api/v1/me/addresses/');
assert.deepEqual(
  book.data?.results.map((a) => a.id),
  [added.data.id],
);
const toIt = await customer.POST('/api/v1/orders/', {
  body: { lines: [{ product_id: rye.id, quantity: 1 }], address_id: added.data.id },
});
assert.equal(toIt.response.status, 201);
assert.ok(toIt.data);
// A nullable object is written (OpenAPI 3.0, apispec) as the object or a nullable object of no
// known field: narrowed by one of its fields.
const deliveredTo = toIt.data.delivery_address;
assert.ok(deliveredTo && 'recipient' in deliveredTo);
assert.equal(deliveredTo.recipient, 'Jane Baker');
assert.equal(toIt.data.invoice_number, null);
const repeat = await customer.POST('/api/v1/orders/{order_id}/reorder/', {
  params: { path: { order_id: toIt.data.id } },
});
assert.equal(repeat.response.status, 201);
assert.ok(repeat.data);
assert.notEqual(repeat.data.id, toIt.data.id);
assert.deepEqual(
  repeat.data.lines.map((l) => [l.product_id, l.quantity]),
  [[rye.id, 1]],
);
type Reordered = operations['reorder']['responses'][201]['headers'];
assert.equal(header<Reordered>(repeat.response, 'Location'), `/api/v1/orders/${repeat.data.id}/`);

step('staff ship it; its invoice, then 304');
const shipped = await staff.POST('/api/v1/staff/orders/{order_id}/ship/', {
  params: { path: { order_id: repeat.data.id } },
});
assert.equal(shipped.response.status, 200);
const number = shipped.data?.invoice_number;
assert.ok(number?.startsWith('INV-'));
const invoice = await customer.GET('/api/v1/orders/{order_id}/invoice/', {
  params: { path: { order_id: repeat.data.id } },
  parseAs: 'arrayBuffer',
});
assert.equal(invoice.response.status, 200);
assert.equal(invoice.response.headers.get('Content-Type'), 'application/pdf');
assert.ok(invoice.data);
assert.equal(Buffer.from(invoice.data).subarray(0, 4).toString(), '%PDF');
type Invoiced = operations['getInvoice']['responses'][200]['headers'];
assert.equal(
  header<Invoiced>(invoice.response, 'Content-Disposition'),
  `inline; filename="${number}.pdf"`,
);
const invoiceTag = header<Invoiced>(invoice.response, 'ETag');
assert.ok(invoiceTag);
const cachedInvoice = await customer.GET('/api/v1/orders/{order_id}/invoice/', {
  params: { path: { order_id: repeat.data.id }, header: { 'If-None-Match': invoiceTag } },
});
assert.equal(cachedInvoice.response.status, 304);
step('done');
