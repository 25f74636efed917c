-- Products most often bought together (market basket pairs) in the last six months.
WITH baskets AS (
    SELECT DISTINCT oi.order_id, oi.product_id
    FROM order_items AS oi
    JOIN orders AS o ON o.order_id = oi.order_id
    WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '6 months'
      AND o.status = 'completed'
),
pairs AS (
    SELECT a.product_id AS product_a, b.product_id AS product_b, count(*) AS together
    FROM baskets AS a
    JOIN baskets AS b ON a.order_id = b.order_id AND a.product_id < b.product_id
    GROUP BY a.product_id, b.product_id
    HAVING count(*) >= 20
)
SELECT
    pa.name AS product_a_name,
    pb.name AS product_b_name,
    pairs.together,
    round(pairs.together * 1.0 / (SELECT count(DISTINCT order_id) FROM baskets), 4) AS support
FROM pairs
JOIN products AS pa ON pa.product_id = pairs.product_a
JOIN products AS pb ON pb.product_id = pairs.product_b
ORDER BY pairs.together DESC
LIMIT 100;
