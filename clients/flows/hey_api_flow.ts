// The mobile flow through the SDK @hey-api/openapi-ts generated from the served document, with
// its Zod validators on: every request body it sends and every answer it parses must match the
// document, or the call throws. Bearer tokens go where the document's security says.
// Run by clients/run.py (type-checked by tsc first) with the live server and its users.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import {
  addAddress,
  cancelOrder,
  createProduct,
  getInvoice,
  getOrder,
  getProduct,
  listAddresses,
  listOrders,
  listProducts,
  logIn,
  placeOrder,
  refreshTokens,
  reorder,
  shipOrder,
  type PlaceOrderErrors,
  type Product,
  type RefreshTokensErrors,
} from '../generated/hey-api';
import { createClient, createConfig } from '../generated/hey-api/client';

const BASE = process.env.OPPLY_BASE_URL!;
const PASSWORD = process.env.OPPLY_PASSWORD!;
const CUSTOMER = process.env.OPPLY_CUSTOMER!;
const STAFF = process.env.OPPLY_STAFF!;
const TAG = `HA-${randomUUID().slice(0, 6)}`.toUpperCase();

const step = (message: string) => console.log(`  hey-api: ${message}`);
const anonymous = createClient(createConfig({ baseUrl: BASE }));
const as = (access: string) => createClient(createConfig({ baseUrl: BASE, auth: () => access }));

async function tokens(username: string) {
  const { data, error } = await logIn({
    client: anonymous,
    body: { username, password: PASSWORD },
  });
  assert.ok(data, JSON.stringify(error));
  return data;
}

step('log in, refresh; the old refresh token is then refused');
const first = await tokens(CUSTOMER);
const rotated = await refreshTokens({ client: anonymous, body: { refresh: first.refresh } });
assert.ok(rotated.data?.access);
const again = await refreshTokens({ client: anonymous, body: { refresh: first.refresh } });
assert.equal(again.response.status, 401);
const refused: RefreshTokensErrors[401] = again.error as RefreshTokensErrors[401];
const refusedCode: 'invalid_token' = refused.code;
assert.equal(refusedCode, 'invalid_token');
// A refresh token used twice ends that whole login: log in again.
const customer = as((await tokens(CUSTOMER)).access);

step('staff create two products');
const staff = as((await tokens(STAFF)).access);
const created: Product[] = [];
for (const [name, stock] of [
  ['Oat flour 25kg', 5],
  ['Rye flakes 10kg', 3],
] as const) {
  const { data, response } = await createProduct({
    client: staff,
    body: { name: `${name} ${TAG}`, price: '12.50', vat_rate: '7.00', quantity_in_stock: stock },
  });
  assert.equal(response.status, 201);
  assert.ok(data);
  assert.equal(response.headers.get('Location'), `/api/v1/products/${data.id}/`);
  created.push(data);
}
const [oat, rye] = created;

step('product pages');
const page1 = await listProducts({ client: customer, query: { search: TAG, page_size: 1 } });
assert.equal(page1.data?.count, 2);
assert.deepEqual(
  page1.data?.results.map((p) => p.id),
  [oat.id],
);
assert.ok(page1.data?.next);
const page2 = await listProducts({
  client: customer,
  query: { search: TAG, page_size: 1, page: 2 },
});
assert.deepEqual(
  page2.data?.results.map((p) => p.id),
  [rye.id],
);
assert.equal(page2.data?.next, null);

step('product detail with its ETag, then 304');
const detail = await getProduct({ client: anonymous, path: { product_id: oat.id } });
assert.equal(detail.data?.quantity_in_stock, 5);
const etag = detail.response.headers.get('ETag');
assert.ok(etag);
const unchanged = await getProduct({
  client: anonymous,
  path: { product_id: oat.id },
  headers: { 'If-None-Match': etag },
});
assert.equal(unchanged.response.status, 304);
assert.equal(unchanged.data, undefined);

step('an order with an Idempotency-Key, then its replay');
const key = randomUUID();
const lines = [
  { product_id: oat.id, quantity: 3 },
  { product_id: rye.id, quantity: 1 },
];
const placed = await placeOrder({
  client: customer,
  headers: { 'Idempotency-Key': key },
  body: { lines },
});
assert.equal(placed.response.status, 201);
assert.ok(placed.data);
assert.equal(placed.data.total, '53.51');
assert.equal(placed.response.headers.get('Idempotent-Replayed'), null);
const replay = await placeOrder({
  client: customer,
  headers: { 'Idempotency-Key': key },
  body: { lines },
});
assert.equal(replay.response.status, 201);
assert.equal(replay.response.headers.get('Idempotent-Replayed'), 'true');
assert.equal(replay.data?.id, placed.data.id);

step('409 out_of_stock, parsed as the error model');
const short = await placeOrder({
  client: customer,
  body: { lines: [{ product_id: oat.id, quantity: 3 }] },
});
assert.equal(short.response.status, 409);
const conflict = short.error as PlaceOrderErrors[409];
// Typed as exactly the codes the document lists for this answer (a wider type would not compile).
const code: 'out_of_stock' | 'request_in_progress' = conflict.code;
assert.equal(code, 'out_of_stock');
assert.deepEqual(conflict.errors, [{ product_id: oat.id, requested: 3, available: 2 }]);

step('history, detail, cancel');
const history = await listOrders({ client: customer });
assert.deepEqual(
  history.data?.results.map((o) => o.id),
  [placed.data.id],
);
const seen = await getOrder({ client: customer, path: { order_id: placed.data.id } });
assert.deepEqual(
  seen.data?.lines.map((l) => l.quantity),
  [3, 1],
);
const cancelled = await cancelOrder({ client: customer, path: { order_id: placed.data.id } });
assert.equal(cancelled.data?.status, 'cancelled');
assert.ok(cancelled.data?.cancelled_at);
const restocked = await getProduct({ client: anonymous, path: { product_id: oat.id } });
assert.equal(restocked.data?.quantity_in_stock, 5);

step('an address, an order to it, a reorder');
const added = await addAddress({
  client: customer,
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
const book = await listAddresses({ client: customer });
assert.deepEqual(
  book.data?.results.map((a) => a.id),
  [added.data.id],
);
const toIt = await placeOrder({
  client: customer,
  body: { lines: [{ product_id: rye.id, quantity: 1 }], address_id: added.data.id },
});
assert.equal(toIt.response.status, 201);
assert.ok(toIt.data);
// A nullable object is written (OpenAPI 3.0, apispec) as the object or a nullable object of no
// known field: narrowed by one of its fields.
const deliveredTo = toIt.data.delivery_address;
assert.ok(deliveredTo && 'recipient' in deliveredTo);
assert.equal(deliveredTo.recipient, 'Jane Baker');
const repeat = await reorder({ client: customer, path: { order_id: toIt.data.id } });
assert.equal(repeat.response.status, 201);
assert.ok(repeat.data);
assert.notEqual(repeat.data.id, toIt.data.id);

step('staff ship it; its invoice');
const shipped = await shipOrder({ client: staff, path: { order_id: repeat.data.id } });
assert.equal(shipped.response.status, 200);
assert.ok(shipped.data?.invoice_number?.startsWith('INV-'));
const invoice = await getInvoice({
  client: customer,
  path: { order_id: repeat.data.id },
  parseAs: 'blob',
});
assert.equal(invoice.response.status, 200);
assert.equal(invoice.response.headers.get('Content-Type'), 'application/pdf');
assert.ok(invoice.data);
step('done');
