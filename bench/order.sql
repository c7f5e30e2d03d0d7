-- The SQL of POST /api/v1/orders/ with 2 lines (see bench/run.py): lock the lines' products in
-- id order, take their stock, insert the order and its lines, in one transaction.
-- Variables from run.py: -D products=N -D customers_from=A -D customers_to=B
\set half :products / 2
\set p1 random(1, :half)
\set p2 :p1 + :half
\set customer random(:customers_from, :customers_to)
BEGIN;
SELECT id, name, price, quantity_in_stock FROM products WHERE id IN (:p1, :p2) ORDER BY id FOR UPDATE;
UPDATE products SET quantity_in_stock = products.quantity_in_stock - 1 WHERE id IN (:p1, :p2);
INSERT INTO orders (customer_id, status, currency, created_at) VALUES (:customer, 'placed', 'EUR', now()) RETURNING id \gset order_
INSERT INTO order_lines (order_id, product_id, product_name, unit_price, quantity)
  VALUES (:order_id, :p1, 'Product', 10.50, 1), (:order_id, :p2, 'Product', 10.50, 1);
COMMIT;
