-- Gross margin by category and subcategory with subtotals (ROLLUP).
SELECT
    coalesce(p.category, 'ALL') AS category,
    coalesce(p.subcategory, 'ALL') AS subcategory,
    grouping(p.category, p.subcategory) AS grouping_level,
    sum(oi.quantity) AS units,
    sum(oi.quantity * oi.unit_price - oi.discount) AS net_sales,
    sum(oi.quantity * p.cost) AS cogs,
    sum(oi.quantity * oi.unit_price - oi.discount) - sum(oi.quantity * p.cost) AS gross_margin,
    round(
        (sum(oi.quantity * oi.unit_price - oi.discount) - sum(oi.quantity * p.cost))
        / nullif(sum(oi.quantity * oi.unit_price - oi.discount), 0) * 100,
        1
    ) AS margin_pct
FROM order_items AS oi
JOIN products AS p ON p.product_id = oi.product_id
JOIN orders AS o ON o.order_id = oi.order_id
WHERE o.status = 'completed'
  AND o.ordered_at >= DATE '2024-01-01'
  AND o.ordered_at < DATE '2025-01-01'
GROUP BY ROLLUP (p.category, p.subcategory)
ORDER BY p.category NULLS LAST, p.subcategory NULLS LAST;
