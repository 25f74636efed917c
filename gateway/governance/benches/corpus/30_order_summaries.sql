-- Readable summaries of yesterday's large orders: product list, payment and shipping state.
SELECT
    o.order_id,
    c.email,
    o.ordered_at,
    o.total_amount,
    o.currency,
    string_agg(p.name || ' x' || CAST(oi.quantity AS VARCHAR), ', ' ORDER BY p.name) AS items,
    sum(oi.quantity) AS units,
    max(pay.method) AS payment_method,
    bool_and(pay.status = 'succeeded') AS fully_paid,
    max(s.carrier) AS carrier
FROM orders AS o
JOIN customers AS c ON c.customer_id = o.customer_id
JOIN order_items AS oi ON oi.order_id = o.order_id
JOIN products AS p ON p.product_id = oi.product_id
LEFT JOIN payments AS pay ON pay.order_id = o.order_id
LEFT JOIN shipments AS s ON s.order_id = o.order_id
WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '1 day'
  AND o.ordered_at < CURRENT_DATE
  AND o.total_amount >= 250
GROUP BY o.order_id, c.email, o.ordered_at, o.total_amount, o.currency
ORDER BY o.total_amount DESC
LIMIT 5000;
