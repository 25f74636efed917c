-- Active products launched over a year ago that sold little recently, with their last sale.
SELECT
    p.product_id,
    p.sku,
    p.name,
    p.category,
    p.launched_at,
    p.unit_price,
    (
        SELECT max(o.ordered_at)
        FROM order_items AS oi
        JOIN orders AS o ON o.order_id = oi.order_id
        WHERE oi.product_id = p.product_id
    ) AS last_sold_at,
    (
        SELECT coalesce(sum(oi.quantity), 0)
        FROM order_items AS oi
        JOIN orders AS o ON o.order_id = oi.order_id
        WHERE oi.product_id = p.product_id
          AND o.ordered_at >= CURRENT_DATE - INTERVAL '90 days'
    ) AS units_90d
FROM products AS p
WHERE NOT p.is_discontinued
  AND p.launched_at < CURRENT_DATE - INTERVAL '1 year'
  AND p.product_id NOT IN (
      SELECT oi.product_id
      FROM order_items AS oi
      JOIN orders AS o ON o.order_id = oi.order_id
      WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '30 days'
  )
ORDER BY last_sold_at NULLS FIRST, p.sku;
