-- Carrier delivery performance per warehouse: median and 90th percentile transit time, late share.
SELECT
    s.warehouse,
    s.carrier,
    count(*) AS shipments,
    percentile_cont(0.5) WITHIN GROUP (
        ORDER BY EXTRACT(epoch FROM s.delivered_at - s.shipped_at) / 3600
    ) AS median_transit_hours,
    percentile_cont(0.9) WITHIN GROUP (
        ORDER BY EXTRACT(epoch FROM s.delivered_at - s.shipped_at) / 3600
    ) AS p90_transit_hours,
    avg(CASE WHEN s.delivered_at > s.shipped_at + INTERVAL '3 days' THEN 1.0 ELSE 0.0 END) AS late_share,
    count(*) FILTER (WHERE s.status = 'lost') AS lost
FROM shipments AS s
JOIN orders AS o ON o.order_id = s.order_id
WHERE s.shipped_at >= CURRENT_DATE - INTERVAL '60 days'
  AND s.delivered_at IS NOT NULL
  AND o.channel = 'web'
GROUP BY s.warehouse, s.carrier
ORDER BY s.warehouse, median_transit_hours;
