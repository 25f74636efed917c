-- Last-touch attribution: the campaign of the latest session within 7 days before each order.
WITH touches AS (
    SELECT
        o.order_id,
        o.total_amount,
        ws.source,
        ws.campaign,
        row_number() OVER (PARTITION BY o.order_id ORDER BY ws.started_at DESC) AS touch_rank
    FROM orders AS o
    JOIN web_sessions AS ws
        ON ws.customer_id = o.customer_id
       AND ws.started_at <= o.ordered_at
       AND ws.started_at > o.ordered_at - INTERVAL '7 days'
    WHERE o.status = 'completed'
      AND o.ordered_at >= CURRENT_DATE - INTERVAL '90 days'
)
SELECT
    coalesce(source, '(direct)') AS source,
    coalesce(campaign, '(none)') AS campaign,
    count(*) AS attributed_orders,
    sum(total_amount) AS attributed_revenue,
    round(avg(total_amount), 2) AS avg_order_value,
    round(100.0 * sum(total_amount) / sum(sum(total_amount)) OVER (), 2) AS revenue_share_pct
FROM touches
WHERE touch_rank = 1
GROUP BY coalesce(source, '(direct)'), coalesce(campaign, '(none)')
ORDER BY attributed_revenue DESC;
