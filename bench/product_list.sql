-- The SQL of GET /api/v1/products/?page=P (page_size 20), as SqlProductRepository._whole_catalogue
-- sends it: the catalogue's size from product_stats in the same statement; a deep page finds its
-- first id by an index-only skip from the start or, past the middle, from the end.
-- bench/run.py passes -D offset=(P-1)*20 (page 1 sends no WHERE; offset 0 costs the same here).
\set twice 2 * :offset
SELECT products.id, products.name, products.price, products.quantity_in_stock,
       (SELECT product_stats.product_count FROM product_stats WHERE product_stats.id = 1) AS total
FROM products
WHERE products.id >= CASE
    WHEN :offset >= (SELECT product_count FROM product_stats WHERE id = 1) THEN NULL
    WHEN :twice > (SELECT product_count FROM product_stats WHERE id = 1) THEN (
        SELECT products.id FROM products ORDER BY products.id DESC LIMIT 1
        OFFSET (SELECT product_count FROM product_stats WHERE id = 1) - :offset - 1)
    ELSE (SELECT products.id FROM products ORDER BY products.id LIMIT 1 OFFSET :offset)
  END
ORDER BY products.id LIMIT 20;
