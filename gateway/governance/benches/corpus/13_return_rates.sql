-- Return rate and refunded amount per brand, with the most common return reason.
WITH item_returns AS (
    SELECT
        p.brand,
        oi.order_item_id,
        oi.quantity * oi.unit_price AS item_value,
        r.return_id,
        r.reason,
        r.refund_amount
    FROM order_items AS oi
    JOIN products AS p ON p.product_id = oi.product_id
    JOIN orders AS o ON o.order_id = oi.order_id
    LEFT JOIN returns AS r ON r.order_item_id = oi.order_item_id
    WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '1 year'
),
reasons AS (
    SELECT brand, reason, count(*) AS n,
           row_number() OVER (PARTITION BY brand ORDER BY count(*) DESC, reason) AS rn
    FROM item_returns
    WHERE return_id IS NOT NULL
    GROUP BY brand, reason
)
SELECT
    ir.brand,
    count(*) AS items_sold,
    count(ir.return_id) AS items_returned,
    round(100.0 * count(ir.return_id) / count(*), 2) AS return_rate_pct,
    coalesce(sum(ir.refund_amount), 0) AS refunded,
    max(rs.reason) AS top_reason
FROM item_returns AS ir
LEFT JOIN reasons AS rs ON rs.brand = ir.brand AND rs.rn = 1
GROUP BY ir.brand
ORDER BY return_rate_pct DESC;
