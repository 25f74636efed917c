-- Coupon usage: orders, discount given, average basket with and without a coupon, per channel.
SELECT
    o.channel,
    o.coupon_code IS NOT NULL AS used_coupon,
    count(*) AS orders,
    sum(o.discount_amount) AS total_discount,
    round(avg(o.total_amount), 2) AS avg_order_value,
    round(avg(items.item_count), 2) AS avg_items_per_order,
    round(sum(o.discount_amount) / nullif(sum(o.total_amount + o.discount_amount), 0) * 100, 2)
        AS effective_discount_pct,
    count(DISTINCT o.customer_id) AS customers
FROM orders AS o
JOIN (
    SELECT order_id, sum(quantity) AS item_count
    FROM order_items
    GROUP BY order_id
) AS items ON items.order_id = o.order_id
WHERE o.status = 'completed'
  AND o.ordered_at >= date_trunc('quarter', CURRENT_DATE)
GROUP BY o.channel, o.coupon_code IS NOT NULL
ORDER BY o.channel, used_coupon;
