-- One timeline of orders, payments and shipments for customers active this week.
WITH active AS (
    SELECT DISTINCT customer_id
    FROM web_sessions
    WHERE started_at >= CURRENT_DATE - INTERVAL '7 days' AND customer_id IS NOT NULL
)
SELECT o.customer_id, o.ordered_at AS at, 'order' AS event, o.order_id, o.total_amount AS amount, o.status
FROM orders AS o
WHERE o.customer_id IN (SELECT customer_id FROM active)
UNION ALL
SELECT o.customer_id, p.paid_at, 'payment', p.order_id, p.amount, p.status
FROM payments AS p
JOIN orders AS o ON o.order_id = p.order_id
WHERE o.customer_id IN (SELECT customer_id FROM active)
UNION ALL
SELECT o.customer_id, s.shipped_at, 'shipment', s.order_id, NULL, s.status
FROM shipments AS s
JOIN orders AS o ON o.order_id = s.order_id
WHERE o.customer_id IN (SELECT customer_id FROM active)
  AND s.shipped_at IS NOT NULL
ORDER BY 1, 2;
