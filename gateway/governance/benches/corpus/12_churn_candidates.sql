-- Active customers with at least three past orders and none in the last 120 days.
SELECT
    c.customer_id,
    c.email,
    c.first_name,
    c.country,
    stats.order_count,
    stats.lifetime_value,
    stats.last_order_at,
    CURRENT_DATE - CAST(stats.last_order_at AS DATE) AS days_inactive
FROM customers AS c
JOIN (
    SELECT
        customer_id,
        count(*) AS order_count,
        sum(total_amount) AS lifetime_value,
        max(ordered_at) AS last_order_at
    FROM orders
    WHERE status = 'completed'
    GROUP BY customer_id
    HAVING count(*) >= 3
) AS stats ON stats.customer_id = c.customer_id
WHERE c.is_active
  AND stats.last_order_at < CURRENT_DATE - INTERVAL '120 days'
  AND NOT EXISTS (
      SELECT 1
      FROM web_sessions AS ws
      WHERE ws.customer_id = c.customer_id
        AND ws.started_at >= CURRENT_DATE - INTERVAL '30 days'
  )
ORDER BY stats.lifetime_value DESC;
