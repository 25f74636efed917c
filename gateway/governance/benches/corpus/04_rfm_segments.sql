-- Recency, frequency and monetary scores per customer, bucketed into quintiles.
WITH stats AS (
    SELECT
        c.customer_id,
        c.email,
        max(o.ordered_at) AS last_order_at,
        count(o.order_id) AS order_count,
        coalesce(sum(o.total_amount), 0) AS lifetime_value
    FROM customers AS c
    LEFT JOIN orders AS o
        ON o.customer_id = c.customer_id AND o.status = 'completed'
    WHERE c.is_active
    GROUP BY c.customer_id, c.email
),
scored AS (
    SELECT
        s.*,
        ntile(5) OVER (ORDER BY s.last_order_at) AS r_score,
        ntile(5) OVER (ORDER BY s.order_count) AS f_score,
        ntile(5) OVER (ORDER BY s.lifetime_value) AS m_score
    FROM stats AS s
)
SELECT
    customer_id,
    email,
    r_score, f_score, m_score,
    CASE
        WHEN r_score >= 4 AND f_score >= 4 AND m_score >= 4 THEN 'champion'
        WHEN r_score >= 3 AND f_score >= 3 THEN 'loyal'
        WHEN r_score <= 2 AND f_score >= 3 THEN 'at_risk'
        WHEN r_score <= 2 THEN 'hibernating'
        ELSE 'promising'
    END AS segment
FROM scored
ORDER BY m_score DESC, lifetime_value DESC;
