-- Does a late first delivery reduce the chance of a second order within 90 days?
WITH first_orders AS (
    SELECT DISTINCT ON (o.customer_id) o.customer_id, o.order_id, o.ordered_at
    FROM orders AS o
    WHERE o.status = 'completed'
    ORDER BY o.customer_id, o.ordered_at
),
first_delivery AS (
    SELECT
        f.customer_id,
        f.ordered_at,
        s.delivered_at > f.ordered_at + INTERVAL '5 days' AS was_late
    FROM first_orders AS f
    JOIN shipments AS s ON s.order_id = f.order_id
    WHERE s.delivered_at IS NOT NULL
)
SELECT
    fd.was_late,
    count(*) AS customers,
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM orders AS o2
        WHERE o2.customer_id = fd.customer_id
          AND o2.ordered_at > fd.ordered_at
          AND o2.ordered_at <= fd.ordered_at + INTERVAL '90 days'
    )) AS reordered_90d
FROM first_delivery AS fd
GROUP BY fd.was_late
ORDER BY fd.was_late;
