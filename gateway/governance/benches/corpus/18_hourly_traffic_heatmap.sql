-- Sessions and conversions by weekday and hour of day (heatmap) for the last eight weeks.
SELECT
    EXTRACT(dow FROM ws.started_at) AS weekday,
    EXTRACT(hour FROM ws.started_at) AS hour_of_day,
    count(*) AS sessions,
    count(ws.converted_order_id) AS conversions,
    round(100.0 * count(ws.converted_order_id) / count(*), 2) AS conversion_pct,
    round(avg(EXTRACT(epoch FROM ws.ended_at - ws.started_at)) / 60, 1) AS avg_minutes,
    sum(CASE WHEN ws.device = 'mobile' THEN 1 ELSE 0 END) AS mobile_sessions
FROM web_sessions AS ws
WHERE ws.started_at >= CURRENT_DATE - INTERVAL '8 weeks'
  AND ws.ended_at IS NOT NULL
  AND ws.pageviews > 0
GROUP BY EXTRACT(dow FROM ws.started_at), EXTRACT(hour FROM ws.started_at)
ORDER BY weekday, hour_of_day;
