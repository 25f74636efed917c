-- The three most recent orders of each VIP customer, via a LATERAL subquery.
SELECT
    c.customer_id,
    c.first_name,
    c.last_name,
    recent.order_id,
    recent.ordered_at,
    recent.total_amount,
    recent.status
FROM customers AS c
CROSS JOIN LATERAL (
    SELECT o.order_id, o.ordered_at, o.total_amount, o.status
    FROM orders AS o
    WHERE o.customer_id = c.customer_id
    ORDER BY o.ordered_at DESC
    LIMIT 3
) AS recent
WHERE c.segment = 'vip'
  AND c.is_active
ORDER BY c.customer_id, recent.ordered_at DESC;
