-- Monthly signup cohorts and the share of each cohort that ordered again N months later.
WITH first_orders AS (
    SELECT customer_id, min(date_trunc('month', ordered_at)) AS cohort_month
    FROM orders
    WHERE status <> 'cancelled'
    GROUP BY customer_id
),
activity AS (
    SELECT DISTINCT o.customer_id, date_trunc('month', o.ordered_at) AS active_month
    FROM orders AS o
    WHERE o.status <> 'cancelled'
),
cohort_activity AS (
    SELECT
        f.cohort_month,
        (EXTRACT(year FROM a.active_month) - EXTRACT(year FROM f.cohort_month)) * 12
            + EXTRACT(month FROM a.active_month) - EXTRACT(month FROM f.cohort_month) AS month_number,
        a.customer_id
    FROM first_orders AS f
    JOIN activity AS a ON a.customer_id = f.customer_id
)
SELECT
    cohort_month,
    month_number,
    count(DISTINCT customer_id) AS active_customers,
    round(100.0 * count(DISTINCT customer_id)
        / max(count(DISTINCT customer_id)) OVER (PARTITION BY cohort_month), 1) AS retention_pct
FROM cohort_activity
WHERE month_number BETWEEN 0 AND 12
GROUP BY cohort_month, month_number
ORDER BY cohort_month, month_number;
