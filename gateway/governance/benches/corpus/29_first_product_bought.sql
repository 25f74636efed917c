-- Which categories bring in customers: the category of each customer's first purchase.
WITH first_item AS (
    SELECT DISTINCT ON (o.customer_id)
        o.customer_id,
        o.ordered_at,
        p.category,
        p.brand
    FROM orders AS o
    JOIN order_items AS oi ON oi.order_id = o.order_id
    JOIN products AS p ON p.product_id = oi.product_id
    WHERE o.status = 'completed'
    ORDER BY o.customer_id, o.ordered_at, oi.unit_price DESC
)
SELECT
    fi.category,
    count(*) AS acquired_customers,
    count(*) FILTER (WHERE c.segment = 'vip') AS became_vip,
    round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS share_pct,
    min(fi.ordered_at) AS earliest,
    max(fi.ordered_at) AS latest
FROM first_item AS fi
JOIN customers AS c ON c.customer_id = fi.customer_id
GROUP BY fi.category
ORDER BY acquired_customers DESC;
