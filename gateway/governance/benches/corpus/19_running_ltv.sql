-- Running lifetime value per customer, with the order at which each customer crossed 500.
WITH running AS (
    SELECT
        o.customer_id,
        o.order_id,
        o.ordered_at,
        o.total_amount,
        sum(o.total_amount) OVER (
            PARTITION BY o.customer_id
            ORDER BY o.ordered_at, o.order_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS running_ltv,
        row_number() OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at, o.order_id) AS order_number
    FROM orders AS o
    WHERE o.status = 'completed'
)
SELECT
    c.customer_id,
    c.segment,
    min(r.order_number) FILTER (WHERE r.running_ltv >= 500) AS orders_to_500,
    min(r.ordered_at) FILTER (WHERE r.running_ltv >= 500) AS reached_500_at,
    max(r.running_ltv) AS lifetime_value,
    max(r.order_number) AS orders
FROM customers AS c
JOIN running AS r ON r.customer_id = c.customer_id
GROUP BY c.customer_id, c.segment
HAVING max(r.running_ltv) >= 500
ORDER BY orders_to_500, lifetime_value DESC;
