-- Days between consecutive orders per customer, summarised by customer segment.
WITH ordered AS (
    SELECT
        o.customer_id,
        o.ordered_at,
        lag(o.ordered_at) OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at) AS previous_order_at,
        row_number() OVER (PARTITION BY o.customer_id ORDER BY o.ordered_at) AS order_seq
    FROM orders AS o
    WHERE o.status = 'completed'
),
gaps AS (
    SELECT
        customer_id,
        order_seq,
        CAST(ordered_at AS DATE) - CAST(previous_order_at AS DATE) AS days_since_previous
    FROM ordered
    WHERE previous_order_at IS NOT NULL
)
SELECT
    c.segment,
    count(DISTINCT g.customer_id) AS repeat_customers,
    avg(g.days_since_previous) AS avg_gap_days,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY g.days_since_previous) AS median_gap_days,
    min(g.days_since_previous) AS min_gap_days,
    max(g.days_since_previous) AS max_gap_days,
    avg(g.days_since_previous) FILTER (WHERE g.order_seq = 2) AS avg_first_repeat_gap_days
FROM gaps AS g
JOIN customers AS c ON c.customer_id = g.customer_id
GROUP BY c.segment
ORDER BY median_gap_days;
