-- The online-retailer schema the benchmark corpus (corpus/*.sql) is written against. Governance needs no
-- schema; this file documents the tables and lets anyone check that every corpus query runs:
--   duckdb: python -c "import duckdb; c = duckdb.connect(); c.execute(open('schema.sql').read()); ..."
--   postgres: psql -f schema.sql, then EXPLAIN each query.
CREATE TABLE customers (
    customer_id BIGINT PRIMARY KEY,
    email VARCHAR NOT NULL,
    first_name VARCHAR,
    last_name VARCHAR,
    country VARCHAR(2),
    city VARCHAR,
    segment VARCHAR,
    referred_by BIGINT,
    birth_date DATE,
    signup_at TIMESTAMP NOT NULL,
    is_active BOOLEAN NOT NULL
);
CREATE TABLE products (
    product_id BIGINT PRIMARY KEY,
    sku VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    category VARCHAR,
    subcategory VARCHAR,
    brand VARCHAR,
    unit_price NUMERIC(12, 2),
    cost NUMERIC(12, 2),
    launched_at DATE,
    is_discontinued BOOLEAN NOT NULL
);
CREATE TABLE orders (
    order_id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    ordered_at TIMESTAMP NOT NULL,
    status VARCHAR NOT NULL,
    channel VARCHAR,
    currency VARCHAR(3),
    total_amount NUMERIC(12, 2),
    discount_amount NUMERIC(12, 2),
    shipping_amount NUMERIC(12, 2),
    coupon_code VARCHAR
);
CREATE TABLE order_items (
    order_item_id BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(12, 2) NOT NULL,
    discount NUMERIC(12, 2) NOT NULL
);
CREATE TABLE payments (
    payment_id BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    paid_at TIMESTAMP,
    method VARCHAR,
    amount NUMERIC(12, 2),
    status VARCHAR
);
CREATE TABLE shipments (
    shipment_id BIGINT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    warehouse VARCHAR,
    carrier VARCHAR,
    shipped_at TIMESTAMP,
    delivered_at TIMESTAMP,
    status VARCHAR
);
CREATE TABLE returns (
    return_id BIGINT PRIMARY KEY,
    order_item_id BIGINT NOT NULL,
    returned_at TIMESTAMP,
    reason VARCHAR,
    refund_amount NUMERIC(12, 2)
);
CREATE TABLE web_sessions (
    session_id BIGINT PRIMARY KEY,
    customer_id BIGINT,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP,
    device VARCHAR,
    source VARCHAR,
    medium VARCHAR,
    campaign VARCHAR,
    landing_page VARCHAR,
    pageviews INTEGER,
    converted_order_id BIGINT
);
