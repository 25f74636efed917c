-- Units and revenue by price band and category.
SELECT
    p.category,
    CASE
        WHEN oi.unit_price < 10 THEN '0-10'
        WHEN oi.unit_price < 25 THEN '10-25'
        WHEN oi.unit_price < 50 THEN '25-50'
        WHEN oi.unit_price < 100 THEN '50-100'
        WHEN oi.unit_price < 250 THEN '100-250'
        ELSE '250+'
    END AS price_band,
    min(oi.unit_price) AS band_min_price,
    count(DISTINCT oi.product_id) AS products,
    sum(oi.quantity) AS units,
    sum(oi.quantity * oi.unit_price) AS gross_revenue,
    round(avg(oi.discount / nullif(oi.quantity * oi.unit_price, 0)) * 100, 2) AS avg_discount_pct
FROM order_items AS oi
JOIN products AS p ON p.product_id = oi.product_id
JOIN orders AS o ON o.order_id = oi.order_id
WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '180 days'
GROUP BY p.category, 2
ORDER BY p.category, band_min_price;
