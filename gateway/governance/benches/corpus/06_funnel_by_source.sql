-- Session-to-order conversion by marketing source and device over the last 30 days.
SELECT
    ws.source,
    ws.medium,
    ws.device,
    count(*) AS sessions,
    count(DISTINCT ws.customer_id) AS known_visitors,
    count(*) FILTER (WHERE ws.pageviews > 1) AS engaged_sessions,
    count(ws.converted_order_id) AS converted_sessions,
    round(100.0 * count(ws.converted_order_id) / nullif(count(*), 0), 2) AS conversion_pct,
    sum(o.total_amount) AS attributed_revenue,
    round(avg(ws.pageviews), 1) AS avg_pageviews
FROM web_sessions AS ws
LEFT JOIN orders AS o
    ON o.order_id = ws.converted_order_id
   AND o.status <> 'cancelled'
WHERE ws.started_at >= CURRENT_DATE - INTERVAL '30 days'
GROUP BY ws.source, ws.medium, ws.device
HAVING count(*) >= 50
ORDER BY attributed_revenue DESC NULLS LAST;
