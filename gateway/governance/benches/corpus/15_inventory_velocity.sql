-- Sales velocity per product over 28 days, compared with the previous 28 days.
WITH recent AS (
    SELECT
        oi.product_id,
        sum(oi.quantity) FILTER (WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '28 days') AS units_last_28d,
        sum(oi.quantity) FILTER (
            WHERE o.ordered_at < CURRENT_DATE - INTERVAL '28 days'
              AND o.ordered_at >= CURRENT_DATE - INTERVAL '56 days'
        ) AS units_prev_28d
    FROM order_items AS oi
    JOIN orders AS o ON o.order_id = oi.order_id
    WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '56 days'
      AND o.status <> 'cancelled'
    GROUP BY oi.product_id
)
SELECT
    p.sku,
    p.name,
    p.category,
    coalesce(r.units_last_28d, 0) AS units_last_28d,
    coalesce(r.units_prev_28d, 0) AS units_prev_28d,
    round(coalesce(r.units_last_28d, 0) / 28.0, 2) AS daily_velocity,
    CASE
        WHEN coalesce(r.units_prev_28d, 0) = 0 THEN NULL
        ELSE round(100.0 * (r.units_last_28d - r.units_prev_28d) / r.units_prev_28d, 1)
    END AS growth_pct
FROM products AS p
LEFT JOIN recent AS r ON r.product_id = p.product_id
WHERE NOT p.is_discontinued
ORDER BY daily_velocity DESC, p.sku;
