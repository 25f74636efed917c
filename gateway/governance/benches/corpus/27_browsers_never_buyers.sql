-- Known visitors with at least five sessions in 60 days who have never completed an order.
SELECT
    c.customer_id,
    c.email,
    c.signup_at,
    v.sessions,
    v.total_pageviews,
    v.last_seen_at
FROM (
    SELECT customer_id
    FROM web_sessions
    WHERE started_at >= CURRENT_DATE - INTERVAL '60 days'
      AND customer_id IS NOT NULL
    EXCEPT
    SELECT customer_id
    FROM orders
    WHERE status = 'completed'
) AS never
JOIN customers AS c ON c.customer_id = never.customer_id
JOIN (
    SELECT customer_id, count(*) AS sessions, sum(pageviews) AS total_pageviews, max(started_at) AS last_seen_at
    FROM web_sessions
    WHERE started_at >= CURRENT_DATE - INTERVAL '60 days'
    GROUP BY customer_id
) AS v ON v.customer_id = c.customer_id
WHERE v.sessions >= 5
ORDER BY v.sessions DESC, c.customer_id;
