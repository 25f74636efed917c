-- Payment method mix per country and month, with failure rates.
SELECT
    c.country,
    date_trunc('month', p.paid_at) AS month,
    p.method,
    count(*) AS attempts,
    count(*) FILTER (WHERE p.status = 'succeeded') AS succeeded,
    count(*) FILTER (WHERE p.status = 'failed') AS failed,
    round(100.0 * count(*) FILTER (WHERE p.status = 'failed') / count(*), 2) AS failure_pct,
    sum(p.amount) FILTER (WHERE p.status = 'succeeded') AS captured_amount,
    round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY c.country, date_trunc('month', p.paid_at)), 1)
        AS share_of_attempts_pct
FROM payments AS p
JOIN orders AS o ON o.order_id = p.order_id
JOIN customers AS c ON c.customer_id = o.customer_id
WHERE p.paid_at >= DATE '2024-01-01'
GROUP BY c.country, date_trunc('month', p.paid_at), p.method
ORDER BY c.country, month, attempts DESC;
