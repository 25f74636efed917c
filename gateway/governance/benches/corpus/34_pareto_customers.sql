-- Pareto analysis: cumulative revenue share of customers ranked by spend.
WITH spend AS (
    SELECT customer_id, sum(total_amount) AS revenue
    FROM orders
    WHERE status = 'completed'
      AND ordered_at >= CURRENT_DATE - INTERVAL '1 year'
    GROUP BY customer_id
),
ranked AS (
    SELECT
        customer_id,
        revenue,
        percent_rank() OVER (ORDER BY revenue DESC) AS customer_pct_rank,
        sum(revenue) OVER (ORDER BY revenue DESC, customer_id ROWS UNBOUNDED PRECEDING)
            / sum(revenue) OVER () AS cumulative_share
    FROM spend
)
SELECT
    CASE
        WHEN customer_pct_rank < 0.01 THEN 'top 1%'
        WHEN customer_pct_rank < 0.05 THEN 'top 5%'
        WHEN customer_pct_rank < 0.20 THEN 'top 20%'
        ELSE 'remaining 80%'
    END AS tier,
    count(*) AS customers,
    sum(revenue) AS revenue,
    max(cumulative_share) AS cumulative_share_at_tier_end
FROM ranked
GROUP BY 1
ORDER BY min(customer_pct_rank);
