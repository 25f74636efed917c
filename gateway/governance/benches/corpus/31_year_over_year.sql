-- Month-by-month revenue this year against the same month last year.
WITH monthly AS (
    SELECT
        EXTRACT(year FROM ordered_at) AS yr,
        EXTRACT(month FROM ordered_at) AS mon,
        sum(total_amount) AS revenue,
        count(*) AS orders
    FROM orders
    WHERE status = 'completed'
      AND ordered_at >= date_trunc('year', CURRENT_DATE) - INTERVAL '1 year'
    GROUP BY EXTRACT(year FROM ordered_at), EXTRACT(month FROM ordered_at)
)
SELECT
    cur.mon AS month,
    cur.revenue AS revenue_this_year,
    prev.revenue AS revenue_last_year,
    cur.orders AS orders_this_year,
    prev.orders AS orders_last_year,
    round(100 * (cur.revenue - prev.revenue) / nullif(prev.revenue, 0), 1) AS yoy_pct
FROM monthly AS cur
LEFT JOIN monthly AS prev
    ON prev.mon = cur.mon AND prev.yr = cur.yr - 1
WHERE cur.yr = EXTRACT(year FROM CURRENT_DATE)
ORDER BY cur.mon;
