-- Daily revenue with a 7-day moving average and week-over-week change.
WITH daily AS (
    SELECT
        CAST(o.ordered_at AS DATE) AS day,
        count(*) AS orders,
        sum(o.total_amount) AS revenue
    FROM orders AS o
    WHERE o.status IN ('completed', 'shipped')
      AND o.ordered_at >= CURRENT_DATE - INTERVAL '120 days'
    GROUP BY CAST(o.ordered_at AS DATE)
)
SELECT
    day,
    orders,
    revenue,
    avg(revenue) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS revenue_7d_avg,
    sum(orders) OVER (ORDER BY day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS orders_7d,
    revenue - lag(revenue, 7) OVER (ORDER BY day) AS revenue_wow_delta,
    CASE
        WHEN lag(revenue, 7) OVER (ORDER BY day) IS NULL THEN NULL
        ELSE round(100 * (revenue / nullif(lag(revenue, 7) OVER (ORDER BY day), 0) - 1), 1)
    END AS revenue_wow_pct
FROM daily
ORDER BY day DESC;
