-- Landing pages: first and last landing page per visitor and the sessions between, over a named window.
SELECT DISTINCT
    ws.customer_id,
    first_value(ws.landing_page) OVER w AS first_landing_page,
    last_value(ws.landing_page) OVER w AS last_landing_page,
    count(*) OVER w AS sessions,
    sum(ws.pageviews) OVER w AS pageviews,
    max(CASE WHEN ws.converted_order_id IS NOT NULL THEN 1 ELSE 0 END) OVER w AS converted,
    min(ws.started_at) OVER w AS first_seen,
    max(ws.started_at) OVER w AS last_seen
FROM web_sessions AS ws
WHERE ws.customer_id IS NOT NULL
  AND ws.started_at >= CURRENT_DATE - INTERVAL '14 days'
  AND ws.landing_page NOT LIKE '/admin%'
WINDOW w AS (
    PARTITION BY ws.customer_id
    ORDER BY ws.started_at
    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
)
ORDER BY sessions DESC, ws.customer_id;
