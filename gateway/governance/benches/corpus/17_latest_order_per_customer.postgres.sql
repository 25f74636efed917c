-- Each customer's most recent order with its payment and shipment status (PostgreSQL: filter on row_number).
SELECT customer_id, email, order_id, ordered_at, total_amount,
       payment_method, payment_status, carrier, shipment_status
FROM (
    SELECT
        c.customer_id,
        c.email,
        o.order_id,
        o.ordered_at,
        o.total_amount,
        p.method AS payment_method,
        p.status AS payment_status,
        s.carrier,
        s.status AS shipment_status,
        row_number() OVER (PARTITION BY c.customer_id ORDER BY o.ordered_at DESC, o.order_id DESC) AS rn
    FROM customers AS c
    JOIN orders AS o ON o.customer_id = c.customer_id
    LEFT JOIN payments AS p ON p.order_id = o.order_id
    LEFT JOIN shipments AS s ON s.order_id = o.order_id
    WHERE c.country IN ('DE', 'FR', 'NL', 'BE')
) AS latest
WHERE rn = 1
ORDER BY ordered_at DESC;
