-- Every day of 2024 with its order count, including days without orders (calendar spine).
WITH calendar AS (
    SELECT CAST(d AS DATE) AS day
    FROM generate_series(
        CAST('2024-01-01' AS TIMESTAMP),
        CAST('2024-12-31' AS TIMESTAMP),
        INTERVAL '1 day'
    ) AS g(d)
),
daily_orders AS (
    SELECT CAST(ordered_at AS DATE) AS day, count(*) AS orders, sum(total_amount) AS revenue
    FROM orders
    WHERE ordered_at >= DATE '2024-01-01' AND ordered_at < DATE '2025-01-01'
    GROUP BY CAST(ordered_at AS DATE)
)
SELECT
    cal.day,
    EXTRACT(isodow FROM cal.day) AS iso_weekday,
    coalesce(d.orders, 0) AS orders,
    coalesce(d.revenue, 0) AS revenue,
    CASE WHEN d.orders IS NULL THEN 'no orders' ELSE 'ok' END AS flag
FROM calendar AS cal
LEFT JOIN daily_orders AS d ON d.day = cal.day
ORDER BY cal.day;
