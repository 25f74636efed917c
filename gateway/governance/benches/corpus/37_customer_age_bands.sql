-- Spend by customer age band and segment, from birth dates.
WITH customer_age AS (
    SELECT
        customer_id,
        segment,
        date_part('year', CURRENT_DATE) - date_part('year', birth_date) AS age_years
    FROM customers
    WHERE birth_date IS NOT NULL
)
SELECT
    CASE
        WHEN ca.age_years < 25 THEN '18-24'
        WHEN ca.age_years < 35 THEN '25-34'
        WHEN ca.age_years < 45 THEN '35-44'
        WHEN ca.age_years < 55 THEN '45-54'
        WHEN ca.age_years < 65 THEN '55-64'
        ELSE '65+'
    END AS age_band,
    ca.segment,
    count(DISTINCT ca.customer_id) AS customers,
    count(o.order_id) AS orders,
    round(sum(o.total_amount) / nullif(count(DISTINCT ca.customer_id), 0), 2) AS revenue_per_customer
FROM customer_age AS ca
LEFT JOIN orders AS o ON o.customer_id = ca.customer_id AND o.status = 'completed'
GROUP BY 1, 2
ORDER BY 1, 2;
