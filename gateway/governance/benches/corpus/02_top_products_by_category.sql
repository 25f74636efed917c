-- Top five products by revenue in each category over the last 90 days.
WITH product_revenue AS (
    SELECT
        p.category,
        p.product_id,
        p.name,
        sum(oi.quantity) AS units,
        sum(oi.quantity * oi.unit_price - oi.discount) AS revenue
    FROM order_items AS oi
    JOIN orders AS o ON o.order_id = oi.order_id
    JOIN products AS p ON p.product_id = oi.product_id
    WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '90 days'
      AND o.status = 'completed'
    GROUP BY p.category, p.product_id, p.name
),
ranked AS (
    SELECT
        pr.*,
        rank() OVER (PARTITION BY pr.category ORDER BY pr.revenue DESC) AS category_rank,
        pr.revenue / sum(pr.revenue) OVER (PARTITION BY pr.category) AS share_of_category
    FROM product_revenue AS pr
)
SELECT category, category_rank, product_id, name, units, revenue,
       round(100 * share_of_category, 1) AS pct_of_category
FROM ranked
WHERE category_rank <= 5
ORDER BY category, category_rank;
