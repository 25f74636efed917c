-- Each customer's most recent order with its payment and shipment status (DuckDB: QUALIFY).
SELECT
    c.customer_id,
    c.email,
    o.order_id,
    o.ordered_at,
    o.total_amount,
    p.method AS payment_method,
    p.status AS payment_status,
    s.carrier,
    s.status AS shipment_status
FROM customers AS c
JOIN orders AS o ON o.customer_id = c.customer_id
LEFT JOIN payments AS p ON p.order_id = o.order_id
LEFT JOIN shipments AS s ON s.order_id = o.order_id
WHERE c.country IN ('DE', 'FR', 'NL', 'BE')
QUALIFY row_number() OVER (PARTITION BY c.customer_id ORDER BY o.ordered_at DESC, o.order_id DESC) = 1
ORDER BY o.ordered_at DESC;
