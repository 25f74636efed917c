-- Basket size distribution per channel: quartiles of items and value per order.
WITH baskets AS (
    SELECT
        o.order_id,
        o.channel,
        sum(oi.quantity) AS items,
        count(DISTINCT oi.product_id) AS distinct_products,
        sum(oi.quantity * oi.unit_price - oi.discount) AS basket_value
    FROM orders AS o
    JOIN order_items AS oi ON oi.order_id = o.order_id
    WHERE o.status = 'completed'
      AND o.ordered_at >= CURRENT_DATE - INTERVAL '3 months'
    GROUP BY o.order_id, o.channel
)
SELECT
    channel,
    count(*) AS orders,
    percentile_disc(0.25) WITHIN GROUP (ORDER BY items) AS items_p25,
    percentile_disc(0.5) WITHIN GROUP (ORDER BY items) AS items_median,
    percentile_disc(0.75) WITHIN GROUP (ORDER BY items) AS items_p75,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY basket_value) AS value_median,
    avg(distinct_products) AS avg_distinct_products,
    stddev_samp(basket_value) AS value_stddev
FROM baskets
GROUP BY channel
ORDER BY orders DESC;
