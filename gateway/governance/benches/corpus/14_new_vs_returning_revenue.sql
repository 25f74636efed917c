-- Weekly revenue split between first-time and returning customers.
WITH first_order AS (
    SELECT customer_id, min(ordered_at) AS first_ordered_at
    FROM orders
    WHERE status = 'completed'
    GROUP BY customer_id
)
SELECT
    date_trunc('week', o.ordered_at) AS week,
    sum(CASE WHEN o.ordered_at = f.first_ordered_at THEN o.total_amount ELSE 0 END) AS new_customer_revenue,
    sum(CASE WHEN o.ordered_at > f.first_ordered_at THEN o.total_amount ELSE 0 END) AS returning_revenue,
    count(DISTINCT CASE WHEN o.ordered_at = f.first_ordered_at THEN o.customer_id END) AS new_customers,
    count(DISTINCT CASE WHEN o.ordered_at > f.first_ordered_at THEN o.customer_id END) AS returning_customers,
    round(
        100.0 * sum(CASE WHEN o.ordered_at > f.first_ordered_at THEN o.total_amount ELSE 0 END)
        / nullif(sum(o.total_amount), 0),
        1
    ) AS returning_share_pct
FROM orders AS o
JOIN first_order AS f ON f.customer_id = o.customer_id
WHERE o.status = 'completed'
  AND o.ordered_at >= CURRENT_DATE - INTERVAL '26 weeks'
GROUP BY date_trunc('week', o.ordered_at)
ORDER BY week;
