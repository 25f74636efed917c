-- Revenue by channel, by device and overall in one result (GROUPING SETS).
SELECT
    CASE WHEN grouping(o.channel) = 1 THEN 'all channels' ELSE o.channel END AS channel,
    CASE WHEN grouping(ws.device) = 1 THEN 'all devices' ELSE coalesce(ws.device, 'unknown') END AS device,
    count(DISTINCT o.order_id) AS orders,
    sum(o.total_amount) AS revenue,
    round(avg(o.total_amount), 2) AS avg_order_value
FROM orders AS o
LEFT JOIN web_sessions AS ws ON ws.converted_order_id = o.order_id
WHERE o.status = 'completed'
  AND o.ordered_at >= date_trunc('year', CURRENT_DATE)
GROUP BY GROUPING SETS (
    (o.channel, ws.device),
    (o.channel),
    (ws.device),
    ()
)
ORDER BY grouping(o.channel), channel, grouping(ws.device), device;
