-- Orders whose captured payments do not match the order total (reconciliation check).
SELECT
    o.order_id,
    o.customer_id,
    o.ordered_at,
    o.status,
    o.total_amount,
    coalesce(sum(p.amount) FILTER (WHERE p.status = 'succeeded'), 0) AS captured,
    coalesce(sum(p.amount) FILTER (WHERE p.status = 'refunded'), 0) AS refunded,
    o.total_amount - coalesce(sum(p.amount) FILTER (WHERE p.status = 'succeeded'), 0) AS outstanding,
    count(p.payment_id) AS payment_attempts,
    string_agg(DISTINCT p.method, ', ') AS methods
FROM orders AS o
LEFT JOIN payments AS p ON p.order_id = o.order_id
WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '45 days'
  AND o.status IN ('completed', 'shipped')
GROUP BY o.order_id, o.customer_id, o.ordered_at, o.status, o.total_amount
HAVING abs(o.total_amount - coalesce(sum(p.amount) FILTER (WHERE p.status = 'succeeded'), 0)) > 0.01
ORDER BY abs(o.total_amount - coalesce(sum(p.amount) FILTER (WHERE p.status = 'succeeded'), 0)) DESC;
