-- Monthly revenue, orders and average order value over the last twelve months.
SELECT
    date_trunc('month', o.ordered_at) AS month,
    count(*) AS orders,
    count(DISTINCT o.customer_id) AS customers,
    sum(o.total_amount) AS revenue,
    round(avg(o.total_amount), 2) AS avg_order_value,
    sum(o.discount_amount) AS discounts,
    sum(o.shipping_amount) AS shipping
FROM orders AS o
WHERE o.status NOT IN ('cancelled', 'fraud')
  AND o.ordered_at >= date_trunc('month', CURRENT_DATE) - INTERVAL '12 months'
GROUP BY date_trunc('month', o.ordered_at)
ORDER BY month;
