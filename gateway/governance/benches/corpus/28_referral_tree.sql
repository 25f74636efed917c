-- Referral chains: how many customers each ambassador brought in, directly and indirectly.
WITH RECURSIVE referrals AS (
    SELECT c.customer_id AS root_id, c.customer_id, 0 AS depth
    FROM customers AS c
    WHERE c.segment = 'ambassador'
    UNION ALL
    SELECT r.root_id, c.customer_id, r.depth + 1
    FROM referrals AS r
    JOIN customers AS c ON c.referred_by = r.customer_id
    WHERE r.depth < 5
)
SELECT
    root.customer_id,
    root.email,
    count(*) FILTER (WHERE ref.depth = 1) AS direct_referrals,
    count(*) FILTER (WHERE ref.depth > 1) AS indirect_referrals,
    max(ref.depth) AS deepest_level,
    coalesce(sum(o.total_amount), 0) AS referred_revenue
FROM referrals AS ref
JOIN customers AS root ON root.customer_id = ref.root_id
LEFT JOIN orders AS o
    ON o.customer_id = ref.customer_id AND ref.depth > 0 AND o.status = 'completed'
GROUP BY root.customer_id, root.email
ORDER BY direct_referrals DESC;
