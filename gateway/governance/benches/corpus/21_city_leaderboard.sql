-- Top cities per country by revenue, with each city's share of its country.
WITH city_sales AS (
    SELECT
        c.country,
        c.city,
        count(DISTINCT c.customer_id) AS customers,
        count(o.order_id) AS orders,
        sum(o.total_amount) AS revenue
    FROM customers AS c
    JOIN orders AS o ON o.customer_id = c.customer_id
    WHERE o.status = 'completed'
      AND o.ordered_at >= CURRENT_DATE - INTERVAL '1 year'
    GROUP BY c.country, c.city
)
SELECT
    country,
    city,
    customers,
    orders,
    revenue,
    round(100 * revenue / sum(revenue) OVER (PARTITION BY country), 1) AS pct_of_country,
    dense_rank() OVER (PARTITION BY country ORDER BY revenue DESC) AS city_rank
FROM city_sales
WHERE customers >= 10
ORDER BY country, city_rank
LIMIT 500;
