-- The Sluice demo warehouse: "Northwind Outfitters", a small online retailer selling electronics, home,
-- outdoor and apparel goods in eight sales regions, from 2023-01-01 to 2025-06-30.
--
-- The script is deterministic: every install builds the same data, so docs, tests and agents' examples
-- can quote real numbers. Pseudo-random values come from hash(seed, 'salt') over range() rows, never from
-- random()/setseed(), whose results depend on how DuckDB splits the work between threads. Sums that are
-- stored are taken over DECIMAL or integer values, whose addition does not depend on order either.
-- Only core DuckDB is used (no ICU, so no TIMESTAMPTZ; no httpfs).
--
-- Most tables declare their primary and foreign keys. web_sessions and product_reviews on purpose declare
-- none: they join to customers, products and orders by column name only, as many real warehouses do.

-- Helpers live in the temporary schema, so they vanish with the connection and never reach the file.
CREATE TEMP MACRO rnd(seed, salt) AS (hash(seed, salt) % 1000000)::DOUBLE / 1000000.0;
CREATE TEMP MACRO pick(seed, salt, n) AS (1 + hash(seed, salt) % n)::INTEGER;
CREATE TEMP MACRO demo_start() AS TIMESTAMP '2023-01-01 00:00:00';
CREATE TEMP MACRO demo_end() AS TIMESTAMP '2025-06-30 23:59:59';
CREATE TEMP MACRO plus_seconds(ts, secs) AS ts + to_seconds(floor(secs)::BIGINT);

-- ---------------------------------------------------------------------------------------------------
-- Reference data
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE regions (
    region_id    INTEGER PRIMARY KEY,
    name         VARCHAR NOT NULL UNIQUE,
    country_code VARCHAR NOT NULL,
    timezone     VARCHAR NOT NULL,
    tax_rate     DOUBLE  NOT NULL,
    opened_on    DATE    NOT NULL
);

INSERT INTO regions VALUES
    (1, 'US East',          'US', 'America/New_York',    0.0625, DATE '2019-03-01'),
    (2, 'US West',          'US', 'America/Los_Angeles', 0.0725, DATE '2019-03-01'),
    (3, 'Canada',           'CA', 'America/Toronto',     0.13,   DATE '2020-06-15'),
    (4, 'UK & Ireland',     'GB', 'Europe/London',       0.20,   DATE '2020-09-01'),
    (5, 'DACH',             'DE', 'Europe/Berlin',       0.19,   DATE '2021-02-01'),
    (6, 'Nordics',          'SE', 'Europe/Stockholm',    0.25,   DATE '2021-10-01'),
    (7, 'France & Benelux', 'FR', 'Europe/Paris',        0.20,   DATE '2021-11-01'),
    (8, 'Australia & NZ',   'AU', 'Australia/Sydney',    0.10,   DATE '2022-02-01');

CREATE TEMP TABLE first_names AS
SELECT i::INTEGER AS idx, names[i] AS first_name
FROM (SELECT [
    'Olivia', 'Liam', 'Emma', 'Noah', 'Amelia', 'Oliver', 'Ava', 'Elijah', 'Sophia', 'Lucas',
    'Isabella', 'Mateo', 'Mia', 'Levi', 'Charlotte', 'Ethan', 'Harper', 'James', 'Evelyn', 'Leo',
    'Aria', 'Hugo', 'Freya', 'Finn', 'Ingrid', 'Lars', 'Chloe', 'Jules', 'Lea', 'Felix',
    'Hannah', 'Maximilian', 'Aisha', 'Omar', 'Priya', 'Arjun', 'Mei', 'Kenji', 'Zoe', 'Samuel'
] AS names) AS n, range(1, 41) AS r(i);

CREATE TEMP TABLE last_names AS
SELECT i::INTEGER AS idx, names[i] AS last_name
FROM (SELECT [
    'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Martin', 'Lopez',
    'Wilson', 'Anderson', 'Taylor', 'Thomas', 'Moore', 'Jackson', 'White', 'Harris', 'Clark', 'Lewis',
    'Walker', 'Young', 'King', 'Wright', 'Scott', 'Green', 'Baker', 'Adams', 'Nelson', 'Hill',
    'Muller', 'Schmidt', 'Johansson', 'Lindqvist', 'Dubois', 'Lefevre', 'O''Brien', 'Murphy', 'Nguyen', 'Patel'
] AS names) AS n, range(1, 41) AS r(i);

-- ---------------------------------------------------------------------------------------------------
-- Employees: a CEO, one sales manager per region, five sales reps per region, a support team.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE employees (
    employee_id   INTEGER PRIMARY KEY,
    first_name    VARCHAR NOT NULL,
    last_name     VARCHAR NOT NULL,
    email         VARCHAR NOT NULL UNIQUE,
    title         VARCHAR NOT NULL,
    department    VARCHAR NOT NULL CHECK (department IN ('Executive', 'Sales', 'Support')),
    region_id     INTEGER REFERENCES regions (region_id),
    manager_id    INTEGER REFERENCES employees (employee_id),
    hired_on      DATE    NOT NULL,
    terminated_on DATE,
    is_active     BOOLEAN NOT NULL,
    annual_salary DECIMAL(12, 2) NOT NULL
);

-- Employee ids decide the role: 1 CEO, 2-9 regional sales managers (region = id - 1), 10-49 sales reps
-- (region = (id - 10) % 8 + 1), 50 head of support, 51-62 support agents.
CREATE TEMP TABLE stage_employees AS
SELECT
    e AS employee_id,
    f.first_name,
    l.last_name,
    CASE
        WHEN e = 1 THEN 'Chief Executive Officer'
        WHEN e <= 9 THEN 'Regional Sales Manager'
        WHEN e <= 49 THEN CASE WHEN e % 3 = 0 THEN 'Senior Account Executive' ELSE 'Account Executive' END
        WHEN e = 50 THEN 'Head of Customer Support'
        ELSE 'Customer Support Specialist'
    END AS title,
    CASE WHEN e = 1 THEN 'Executive' WHEN e <= 49 THEN 'Sales' ELSE 'Support' END AS department,
    CASE
        WHEN e = 1 OR e >= 50 THEN NULL
        WHEN e <= 9 THEN e - 1
        ELSE (e - 10) % 8 + 1
    END AS region_id,
    CASE
        WHEN e = 1 THEN NULL
        WHEN e <= 9 OR e = 50 THEN 1
        WHEN e <= 49 THEN (e - 10) % 8 + 2
        ELSE 50
    END AS manager_id,
    -- Sales staff join shortly before (managers) or after (reps) their region opens.
    CASE
        WHEN e = 1 THEN DATE '2018-06-01'
        WHEN e <= 9 THEN g.opened_on - CAST(60 + hash(e, 'hired') % 60 AS INTEGER)
        WHEN e <= 49 THEN g.opened_on + CAST(hash(e, 'hired') % 150 AS INTEGER)
        WHEN e = 50 THEN DATE '2019-02-01'
        ELSE DATE '2019-04-01' + CAST(hash(e, 'hired') % 1400 AS INTEGER)
    END::DATE AS hired_on,
    -- A few support agents left; everybody else is still employed.
    CASE WHEN e >= 51 AND e % 4 = 0 THEN (DATE '2024-01-15' + CAST(hash(e, 'left') % 500 AS INTEGER))::DATE END
        AS terminated_on,
    round(CASE
        WHEN e = 1 THEN 285000
        WHEN e <= 9 THEN 140000 + hash(e, 'pay') % 30000
        WHEN e <= 49 THEN 72000 + hash(e, 'pay') % 38000
        WHEN e = 50 THEN 118000
        ELSE 48000 + hash(e, 'pay') % 16000
    END + (hash(e, 'cents') % 100) / 100.0, 2)::DECIMAL(12, 2) AS annual_salary
FROM range(1, 63) AS r(e)
JOIN first_names AS f ON f.idx = 1 + (e - 1) % 40
-- The extra (e - 1) // 40 step keeps every (first, last) pair unique.
JOIN last_names AS l ON l.idx = 1 + ((e - 1) * 17 + (e - 1) // 40) % 40
LEFT JOIN regions AS g ON g.region_id = CASE WHEN e BETWEEN 2 AND 9 THEN e - 1 WHEN e BETWEEN 10 AND 49 THEN (e - 10) % 8 + 1 END;

INSERT INTO employees
SELECT employee_id, first_name, last_name,
       lower(first_name || '.' || replace(last_name, '''', '')) || '@northwind-outfitters.example',
       title, department, region_id, manager_id, hired_on, terminated_on, terminated_on IS NULL, annual_salary
FROM stage_employees WHERE employee_id = 1;

INSERT INTO employees
SELECT employee_id, first_name, last_name,
       lower(first_name || '.' || replace(last_name, '''', '')) || '@northwind-outfitters.example',
       title, department, region_id, manager_id, hired_on, terminated_on, terminated_on IS NULL, annual_salary
FROM stage_employees WHERE employee_id IN (2, 3, 4, 5, 6, 7, 8, 9, 50)
ORDER BY employee_id;

INSERT INTO employees
SELECT employee_id, first_name, last_name,
       lower(first_name || '.' || replace(last_name, '''', '')) || '@northwind-outfitters.example',
       title, department, region_id, manager_id, hired_on, terminated_on, terminated_on IS NULL, annual_salary
FROM stage_employees WHERE employee_id BETWEEN 10 AND 49 OR employee_id >= 51
ORDER BY employee_id;

-- ---------------------------------------------------------------------------------------------------
-- Customers: 2,500 sign-ups from March 2022 to May 2025, accelerating over time. Customer ids follow
-- sign-up order.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE customers (
    customer_id        INTEGER PRIMARY KEY,
    first_name         VARCHAR   NOT NULL,
    last_name          VARCHAR   NOT NULL,
    email              VARCHAR   NOT NULL UNIQUE,
    phone              VARCHAR,
    region_id          INTEGER   NOT NULL REFERENCES regions (region_id),
    city               VARCHAR   NOT NULL,
    segment            VARCHAR   NOT NULL CHECK (segment IN ('consumer', 'small_business', 'enterprise')),
    company_name       VARCHAR,
    account_manager_id INTEGER REFERENCES employees (employee_id),
    signed_up_at       TIMESTAMP NOT NULL,
    marketing_opt_in   BOOLEAN   NOT NULL,
    loyalty_points     INTEGER   NOT NULL
);

INSERT INTO customers
WITH base AS (
    SELECT
        c,
        pick(c, 'first-name', 40) AS fi,
        pick(c, 'last-name', 40) AS li,
        rnd(c, 'region') AS rr,
        rnd(c, 'segment') AS rs,
        -- The power below 1 makes sign-ups denser towards the end: the shop is growing.
        plus_seconds(TIMESTAMP '2022-03-01 00:00:00',
            date_diff('second', TIMESTAMP '2022-03-01 00:00:00', TIMESTAMP '2025-05-31 23:59:59')
            * pow((c - 1 + rnd(c, 'signup')) / 2500.0, 0.8)) AS signed_up_at
    FROM range(1, 2501) AS r(c)
), placed AS (
    SELECT *,
        CASE
            WHEN rr < 0.25 THEN 1 WHEN rr < 0.47 THEN 2 WHEN rr < 0.57 THEN 3 WHEN rr < 0.70 THEN 4
            WHEN rr < 0.80 THEN 5 WHEN rr < 0.86 THEN 6 WHEN rr < 0.94 THEN 7 ELSE 8
        END AS region_id,
        CASE WHEN rs < 0.82 THEN 'consumer' WHEN rs < 0.96 THEN 'small_business' ELSE 'enterprise' END AS segment
    FROM base
)
SELECT
    c AS customer_id,
    f.first_name,
    l.last_name,
    lower(f.first_name || '.' || replace(l.last_name, '''', '')) || c
        || ['@example.com', '@example.net', '@example.org', '@mail.example'][pick(c, 'domain', 4)] AS email,
    -- About a third of customers never gave a phone number.
    CASE WHEN rnd(c, 'has-phone') < 0.35 THEN NULL ELSE
        ['+1 ', '+1 ', '+1 ', '+44 ', '+49 ', '+46 ', '+33 ', '+61 '][region_id]
        || lpad((100 + hash(c, 'area') % 900)::VARCHAR, 3, '0') || ' '
        || lpad((hash(c, 'phone') % 10000000)::VARCHAR, 7, '0')
    END AS phone,
    region_id,
    [
        ['New York', 'Boston', 'Philadelphia', 'Atlanta'],
        ['San Francisco', 'Seattle', 'Los Angeles', 'Denver'],
        ['Toronto', 'Vancouver', 'Montreal', 'Calgary'],
        ['London', 'Manchester', 'Dublin', 'Edinburgh'],
        ['Berlin', 'Munich', 'Vienna', 'Zurich'],
        ['Stockholm', 'Copenhagen', 'Oslo', 'Helsinki'],
        ['Paris', 'Lyon', 'Brussels', 'Amsterdam'],
        ['Sydney', 'Melbourne', 'Brisbane', 'Auckland']
    ][region_id][pick(c, 'city', 4)] AS city,
    segment,
    CASE WHEN segment <> 'consumer' THEN
        ['Acme', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Tyrell', 'Cyberdyne', 'Soylent', 'Hooli',
         'Vandelay', 'Pied Piper'][pick(c, 'company', 12)]
        || ' ' || ['Labs', 'Industries', 'Partners', 'Group', 'Studio', 'Outfitters'][pick(c, 'company-suffix', 6)]
    END AS company_name,
    -- Only enterprise accounts have a named account manager: one of their region's five reps.
    CASE WHEN segment = 'enterprise' THEN 10 + (pick(c, 'manager', 5) - 1) * 8 + (region_id - 1) END
        AS account_manager_id,
    signed_up_at,
    rnd(c, 'opt-in') < 0.58 AS marketing_opt_in,
    (hash(c, 'points') % 4000)::INTEGER AS loyalty_points
FROM placed
JOIN first_names AS f ON f.idx = fi
JOIN last_names AS l ON l.idx = li
ORDER BY c;

-- ---------------------------------------------------------------------------------------------------
-- Catalogue: categories (two levels), suppliers and 240 products.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE product_categories (
    category_id        INTEGER PRIMARY KEY,
    name               VARCHAR NOT NULL UNIQUE,
    parent_category_id INTEGER REFERENCES product_categories (category_id)
);

INSERT INTO product_categories VALUES
    (1, 'Electronics', NULL), (2, 'Home & Kitchen', NULL), (3, 'Outdoors', NULL), (4, 'Apparel', NULL);
INSERT INTO product_categories VALUES
    (5, 'Audio', 1), (6, 'Computer Accessories', 1), (7, 'Phone Accessories', 1),
    (8, 'Cookware', 2), (9, 'Furniture', 2),
    (10, 'Camping', 3), (11, 'Cycling', 3),
    (12, 'Footwear', 4), (13, 'Outerwear', 4);

CREATE TABLE suppliers (
    supplier_id   INTEGER PRIMARY KEY,
    name          VARCHAR NOT NULL UNIQUE,
    country_code  VARCHAR NOT NULL,
    contact_email VARCHAR,
    rating        DOUBLE  NOT NULL,
    is_preferred  BOOLEAN NOT NULL
);

INSERT INTO suppliers
SELECT
    s AS supplier_id,
    ['Shenzhen Bright', 'Nordic Forge', 'Pacific Trail', 'Alpine Textiles', 'Lakeside Woodworks',
     'Kyoto Steel', 'Lisbon Leather', 'Delta Audio', 'Harbor Plastics', 'Summit Gear',
     'Bavaria Home', 'Cascadia Cycles', 'Monsoon Fabrics', 'Baltic Timber', 'Atlas Electronics',
     'Riverbend Ceramics', 'Sierra Outdoor', 'Tasman Wool', 'Copper Kettle', 'Granite Works'][s]
        || ' ' || ['Co.', 'Ltd', 'GmbH', 'AB', 'Inc.'][pick(s, 'legal', 5)] AS name,
    ['CN', 'SE', 'US', 'IT', 'US', 'JP', 'PT', 'CN', 'VN', 'US',
     'DE', 'US', 'IN', 'PL', 'TW', 'PT', 'US', 'NZ', 'GB', 'DE'][s] AS country_code,
    -- Some suppliers are only reachable through their portal.
    CASE WHEN s % 6 = 0 THEN NULL ELSE 'orders@supplier' || s || '.example' END AS contact_email,
    round(3.0 + rnd(s, 'rating') * 2.0, 1) AS rating,
    s % 3 = 1 AS is_preferred
FROM range(1, 21) AS r(s)
ORDER BY s;

CREATE TABLE products (
    product_id      INTEGER PRIMARY KEY,
    sku             VARCHAR NOT NULL UNIQUE,
    name            VARCHAR NOT NULL,
    category_id     INTEGER NOT NULL REFERENCES product_categories (category_id),
    supplier_id     INTEGER NOT NULL REFERENCES suppliers (supplier_id),
    list_price      DECIMAL(12, 2) NOT NULL,
    unit_cost       DECIMAL(12, 2) NOT NULL,
    weight_kg       DOUBLE  NOT NULL,
    launched_on     DATE    NOT NULL,
    is_discontinued BOOLEAN NOT NULL
);

INSERT INTO products
WITH base AS (
    SELECT
        p,
        5 + (p - 1) % 9 AS category_id,
        pick(p, 'noun', 5) AS noun_idx,
        0.8 + 0.6 * rnd(p, 'price') AS price_factor
    FROM range(1, 241) AS r(p)
), named AS (
    SELECT *,
        [
            ['Headphones', 'Earbuds', 'Bluetooth Speaker', 'Soundbar', 'Turntable'],
            ['Laptop Stand', 'Mechanical Keyboard', 'Wireless Mouse', '27-inch Monitor', 'USB-C Dock'],
            ['Phone Case', 'Charging Cable', 'Power Bank', 'Wireless Charger', 'Screen Protector'],
            ['Cast Iron Skillet', 'Dutch Oven', 'Chef''s Knife', 'Saucepan', 'Cutting Board'],
            ['Desk Chair', 'Bookshelf', 'Side Table', 'Floor Lamp', 'Standing Desk'],
            ['2-Person Tent', 'Sleeping Bag', 'Headlamp', 'Camp Stove', 'Hiking Backpack'],
            ['Bike Helmet', 'Bike Light Set', 'Cycling Gloves', 'Bottle Cage', 'U-Lock'],
            ['Running Shoes', 'Hiking Boots', 'Sneakers', 'Sandals', 'Trail Runners'],
            ['Rain Jacket', 'Down Parka', 'Fleece Pullover', 'Softshell Jacket', 'Windbreaker']
        ][category_id - 4][noun_idx] AS noun,
        [
            [149, 89, 79, 249, 299], [45, 129, 39, 329, 189], [25, 15, 49, 35, 12],
            [59, 119, 89, 49, 35], [289, 159, 99, 79, 499], [249, 129, 35, 69, 159],
            [79, 49, 29, 19, 59], [129, 189, 99, 49, 149], [139, 259, 69, 159, 89]
        ][category_id - 4][noun_idx] AS base_price,
        [
            [0.3, 0.05, 0.8, 3.5, 6.0], [1.2, 1.0, 0.1, 6.5, 0.4], [0.05, 0.05, 0.3, 0.2, 0.02],
            [2.5, 5.0, 0.3, 1.2, 1.0], [14.0, 22.0, 8.0, 6.0, 30.0], [2.8, 1.5, 0.1, 0.9, 1.6],
            [0.35, 0.2, 0.1, 0.05, 1.2], [0.7, 1.3, 0.8, 0.4, 0.8], [0.5, 1.1, 0.4, 0.6, 0.3]
        ][category_id - 4][noun_idx] AS base_weight
    FROM base
)
SELECT
    p AS product_id,
    'NWO-' || lpad(p::VARCHAR, 5, '0') AS sku,
    ['Aurora', 'Basalt', 'Cobalt', 'Drift', 'Ember', 'Fjord', 'Granite', 'Harbor', 'Juniper', 'Kestrel'][pick(p, 'brand', 10)]
        || ' ' || noun || ' ' || ['Lite', 'Pro', 'Max', 'Classic', 'Air', 'Sport', 'Plus', 'Mini'][pick(p, 'series', 8)]
        AS name,
    category_id,
    pick(p, 'supplier', 20) AS supplier_id,
    (round(base_price * price_factor) - 0.01)::DECIMAL(12, 2) AS list_price,
    round((round(base_price * price_factor) - 0.01) * (0.45 + 0.25 * rnd(p, 'margin')), 2)::DECIMAL(12, 2) AS unit_cost,
    round(base_weight * (0.85 + 0.3 * rnd(p, 'weight')), 3) AS weight_kg,
    (DATE '2019-01-01' + CAST(hash(p, 'launch') % 1400 AS INTEGER))::DATE AS launched_on,
    rnd(p, 'discontinued') < 0.08 AS is_discontinued
FROM named
ORDER BY p;

-- ---------------------------------------------------------------------------------------------------
-- Orders and their lines. Orders are staged with their whole timeline (payment, dispatch, delivery,
-- return); the status is what that timeline looks like on the warehouse's cut-off, 2025-06-30.
-- ---------------------------------------------------------------------------------------------------

CREATE TEMP TABLE stage_orders AS
WITH everyday AS (
    -- Early customers have had longer to come back, so they are picked more often.
    SELECT n AS seed, least(2500, 1 + floor(2500 * pow(rnd(n, 'order-customer'), 1.6)))::INTEGER AS customer_id
    FROM range(1, 7201) AS r(n)
), everyday_timed AS (
    SELECT e.seed, e.customer_id,
        plus_seconds(greatest(c.signed_up_at, demo_start()),
            rnd(e.seed, 'order-time') * date_diff('second', greatest(c.signed_up_at, demo_start()), demo_end()))
            AS ordered_at
    FROM everyday AS e JOIN customers AS c USING (customer_id)
), holiday AS (
    -- The holiday rush: 400 extra orders between 20 November and 23 December in 2023 and in 2024.
    SELECT 100000 + n AS seed,
        plus_seconds(make_timestamp(2023 + n % 2, 11, 20, 0, 0, 0), rnd(n, 'holiday-time') * 34 * 86400) AS ordered_at
    FROM range(1, 801) AS r(n)
), holiday_customers AS (
    -- Customer ids follow sign-up order, so the customers who existed at a time are a prefix of the ids.
    SELECT h.seed, h.ordered_at,
        1 + floor(rnd(h.seed, 'holiday-customer')
            * (SELECT count(*) FROM customers AS c WHERE c.signed_up_at < h.ordered_at))::INTEGER AS customer_id
    FROM holiday AS h
), all_orders AS (
    SELECT seed, customer_id, ordered_at FROM everyday_timed
    UNION ALL
    SELECT seed, customer_id, ordered_at FROM holiday_customers
), timeline AS (
    SELECT
        o.seed, o.customer_id, o.ordered_at, c.region_id, c.segment, c.account_manager_id,
        rnd(o.seed, 'channel') AS rc,
        rnd(o.seed, 'method') AS rm,
        rnd(o.seed, 'gift') < 0.05 AS is_gift,
        rnd(o.seed, 'cancel') < 0.03 AS is_cancelled,
        rnd(o.seed, 'return') < 0.04 AS wants_return,
        CASE
            WHEN rnd(o.seed, 'method') < 0.62 THEN 'card'
            WHEN rnd(o.seed, 'method') < 0.87 THEN 'paypal'
            WHEN rnd(o.seed, 'method') < 0.95 THEN 'bank_transfer'
            ELSE 'gift_card'
        END AS payment_method
    FROM all_orders AS o JOIN customers AS c USING (customer_id)
), timed AS (
    SELECT *,
        plus_seconds(ordered_at, CASE WHEN payment_method = 'bank_transfer'
            THEN 6 * 3600 + rnd(seed, 'pay-delay') * 24 * 3600
            ELSE 20 + rnd(seed, 'pay-delay') * 880 END) AS paid_at
    FROM timeline
), shipped AS (
    SELECT *, plus_seconds(paid_at, 4 * 3600 + rnd(seed, 'ship-delay') * 36 * 3600) AS shipped_at
    FROM timed
), delivered AS (
    SELECT *,
        plus_seconds(shipped_at, 86400 * (CASE WHEN region_id <= 2 THEN 1 WHEN region_id = 8 THEN 3 ELSE 2 END)
            + rnd(seed, 'transit') * 4 * 86400) AS delivered_at
    FROM shipped
), returned AS (
    SELECT *, plus_seconds(delivered_at, 3 * 86400 + rnd(seed, 'refund-delay') * 17 * 86400) AS refunded_at
    FROM delivered
)
SELECT
    100000 + row_number() OVER (ORDER BY ordered_at, seed) AS order_id,
    *,
    CASE
        WHEN is_cancelled THEN 'cancelled'
        WHEN paid_at > demo_end() THEN 'pending'
        WHEN shipped_at > demo_end() THEN 'paid'
        WHEN delivered_at > demo_end() THEN 'shipped'
        WHEN wants_return AND refunded_at <= demo_end() THEN 'returned'
        ELSE 'delivered'
    END AS status,
    CASE WHEN segment = 'enterprise' AND rc < 0.5 THEN 'phone' WHEN rc < 0.58 THEN 'web' WHEN rc < 0.95 THEN 'mobile_app' ELSE 'phone' END
        AS channel,
    CASE
        WHEN month(ordered_at) = 11 AND day(ordered_at) >= 24 OR month(ordered_at) = 12 AND day(ordered_at) <= 2 THEN
            CASE WHEN rnd(seed, 'coupon') < 0.45 THEN 'BLACKFRIDAY20' END
        WHEN month(ordered_at) IN (3, 4, 5) AND rnd(seed, 'coupon') < 0.10 THEN 'SPRING15'
        WHEN rnd(seed, 'coupon') < 0.06 THEN 'LOYAL5'
    END AS coupon_code
FROM returned;

CREATE TEMP TABLE stage_items AS
WITH lines AS (
    SELECT o.order_id, o.seed, o.ordered_at, o.coupon_code, l AS line_number
    FROM stage_orders AS o
    JOIN range(1, 6) AS r(l)
      ON l <= CASE
            WHEN rnd(o.seed, 'lines') < 0.38 THEN 1 WHEN rnd(o.seed, 'lines') < 0.68 THEN 2
            WHEN rnd(o.seed, 'lines') < 0.86 THEN 3 WHEN rnd(o.seed, 'lines') < 0.95 THEN 4 ELSE 5
         END
), chosen AS (
    SELECT *,
        -- Low product ids are the best sellers; the stride of 37 keeps the lines of one order distinct.
        1 + (floor(240 * pow(rnd(seed, 'product'), 1.5))::INTEGER + (line_number - 1) * 37) % 240 AS product_id,
        CASE
            WHEN rnd(seed * 10 + line_number, 'qty') < 0.72 THEN 1
            WHEN rnd(seed * 10 + line_number, 'qty') < 0.90 THEN 2
            WHEN rnd(seed * 10 + line_number, 'qty') < 0.97 THEN 3
            ELSE pick(seed * 10 + line_number, 'bulk-qty', 8) + 3
        END AS quantity,
        CASE coupon_code WHEN 'BLACKFRIDAY20' THEN 0.20 WHEN 'SPRING15' THEN 0.15 WHEN 'LOYAL5' THEN 0.05 ELSE 0 END
            AS discount_rate
    FROM lines
)
SELECT
    c.order_id,
    c.line_number,
    c.product_id,
    c.quantity,
    -- Prices went up a little every year; list_price is today's price.
    round(p.list_price * CASE year(c.ordered_at) WHEN 2023 THEN 0.92 WHEN 2024 THEN 0.96 ELSE 1.0 END, 2)::DECIMAL(12, 2)
        AS unit_price,
    round(c.quantity * round(p.list_price * CASE year(c.ordered_at) WHEN 2023 THEN 0.92 WHEN 2024 THEN 0.96 ELSE 1.0 END, 2)
        * c.discount_rate, 2)::DECIMAL(12, 2) AS discount,
    round(p.weight_kg * 1000)::BIGINT * c.quantity AS weight_g
FROM chosen AS c JOIN products AS p USING (product_id);

CREATE TEMP TABLE stage_totals AS
SELECT
    o.order_id,
    sum(i.quantity * i.unit_price - i.discount)::DECIMAL(12, 2) AS net_items,
    sum(i.weight_g) AS weight_g
FROM stage_orders AS o JOIN stage_items AS i USING (order_id)
GROUP BY o.order_id;

CREATE TABLE orders (
    order_id          BIGINT    PRIMARY KEY,
    customer_id       INTEGER   NOT NULL REFERENCES customers (customer_id),
    sales_rep_id      INTEGER REFERENCES employees (employee_id),
    ordered_at        TIMESTAMP NOT NULL,
    status            VARCHAR   NOT NULL
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'returned', 'cancelled')),
    channel           VARCHAR   NOT NULL CHECK (channel IN ('web', 'mobile_app', 'phone')),
    ship_to_region_id INTEGER   NOT NULL REFERENCES regions (region_id),
    coupon_code       VARCHAR,
    is_gift           BOOLEAN   NOT NULL,
    shipping_fee      DECIMAL(12, 2) NOT NULL,
    tax_amount        DECIMAL(12, 2) NOT NULL
);

INSERT INTO orders
SELECT
    o.order_id,
    o.customer_id,
    -- Phone orders are taken by a sales rep: the account manager for enterprise customers, otherwise
    -- one of the five reps in the customer's region.
    CASE WHEN o.channel = 'phone' THEN coalesce(o.account_manager_id, 10 + (pick(o.seed, 'rep', 5) - 1) * 8 + (o.region_id - 1)) END,
    o.ordered_at,
    o.status,
    o.channel,
    -- Gifts sometimes go to another region.
    CASE WHEN o.is_gift AND rnd(o.seed, 'gift-region') < 0.4 THEN pick(o.seed, 'gift-region-id', 8) ELSE o.region_id END,
    o.coupon_code,
    o.is_gift,
    CASE WHEN t.net_items >= 75 THEN 0 WHEN o.region_id <= 3 THEN 6.95 ELSE 4.95 END::DECIMAL(12, 2),
    round(t.net_items * r.tax_rate, 2)::DECIMAL(12, 2)
FROM stage_orders AS o
JOIN stage_totals AS t USING (order_id)
JOIN regions AS r
  ON r.region_id = CASE WHEN o.is_gift AND rnd(o.seed, 'gift-region') < 0.4 THEN pick(o.seed, 'gift-region-id', 8) ELSE o.region_id END
ORDER BY o.order_id;

CREATE TABLE order_items (
    order_id    BIGINT  NOT NULL REFERENCES orders (order_id),
    line_number INTEGER NOT NULL,
    product_id  INTEGER NOT NULL REFERENCES products (product_id),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  DECIMAL(12, 2) NOT NULL,
    discount    DECIMAL(12, 2) NOT NULL,
    PRIMARY KEY (order_id, line_number)
);

INSERT INTO order_items
SELECT order_id, line_number, product_id, quantity, unit_price, discount
FROM stage_items
ORDER BY order_id, line_number;

-- ---------------------------------------------------------------------------------------------------
-- Payments (a charge per paid order, a refund per returned order) and shipments.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE payments (
    payment_id BIGINT    PRIMARY KEY,
    order_id   BIGINT    NOT NULL REFERENCES orders (order_id),
    paid_at    TIMESTAMP NOT NULL,
    method     VARCHAR   NOT NULL CHECK (method IN ('card', 'paypal', 'bank_transfer', 'gift_card')),
    amount     DECIMAL(12, 2) NOT NULL CHECK (amount > 0),
    is_refund  BOOLEAN   NOT NULL,
    card_last4 VARCHAR
);

INSERT INTO payments
WITH charges AS (
    SELECT o.order_id, s.paid_at, s.payment_method AS method,
           t.net_items + o.shipping_fee + o.tax_amount AS amount, FALSE AS is_refund, s.seed
    FROM orders AS o
    JOIN stage_orders AS s USING (order_id)
    JOIN stage_totals AS t USING (order_id)
    WHERE o.status NOT IN ('pending', 'cancelled')
), refunds AS (
    -- Returns refund the goods and the tax, not the shipping.
    SELECT o.order_id, s.refunded_at AS paid_at, s.payment_method AS method,
           t.net_items + o.tax_amount AS amount, TRUE AS is_refund, s.seed
    FROM orders AS o
    JOIN stage_orders AS s USING (order_id)
    JOIN stage_totals AS t USING (order_id)
    WHERE o.status = 'returned'
), all_payments AS (
    SELECT * FROM charges UNION ALL SELECT * FROM refunds
)
SELECT
    900000 + row_number() OVER (ORDER BY paid_at, order_id, is_refund) AS payment_id,
    order_id, paid_at, method, amount, is_refund,
    CASE WHEN method = 'card' THEN lpad((hash(seed, 'card') % 10000)::VARCHAR, 4, '0') END AS card_last4
FROM all_payments
ORDER BY payment_id;

CREATE TABLE shipments (
    shipment_id     BIGINT  PRIMARY KEY,
    order_id        BIGINT  NOT NULL UNIQUE REFERENCES orders (order_id),
    warehouse       VARCHAR NOT NULL,
    carrier         VARCHAR NOT NULL,
    tracking_number VARCHAR,
    shipped_at      TIMESTAMP,
    delivered_at    TIMESTAMP,
    weight_kg       DOUBLE  NOT NULL,
    shipping_cost   DECIMAL(12, 2) NOT NULL
);

INSERT INTO shipments
WITH fulfilled AS (
    SELECT
        o.order_id, o.status, o.ship_to_region_id AS region_id, s.seed, s.shipped_at, s.delivered_at, t.weight_g,
        [['UPS', 'FedEx', 'USPS'], ['UPS', 'FedEx', 'USPS'], ['Canada Post', 'UPS', 'Purolator'],
         ['Royal Mail', 'DPD', 'Evri'], ['DHL', 'DPD', 'Hermes'], ['PostNord', 'DHL', 'Bring'],
         ['Colissimo', 'DPD', 'PostNL'], ['Australia Post', 'StarTrack', 'NZ Post']][o.ship_to_region_id]
            [pick(s.seed, 'carrier', 3)] AS carrier
    FROM orders AS o
    JOIN stage_orders AS s USING (order_id)
    JOIN stage_totals AS t USING (order_id)
    -- A shipment is opened when the payment clears; it is still waiting in the warehouse for 'paid' orders.
    WHERE o.status IN ('paid', 'shipped', 'delivered', 'returned')
)
SELECT
    700000 + row_number() OVER (ORDER BY order_id) AS shipment_id,
    order_id,
    ['Columbus, OH', 'Reno, NV', 'Toronto, ON', 'Rotterdam, NL', 'Rotterdam, NL', 'Rotterdam, NL',
     'Rotterdam, NL', 'Sydney, NSW'][region_id] AS warehouse,
    carrier,
    CASE WHEN status <> 'paid' THEN
        upper(replace(substr(carrier, 1, 3), ' ', 'X')) || lpad((hash(seed, 'tracking') % 1000000000000)::VARCHAR, 12, '0')
    END AS tracking_number,
    CASE WHEN status <> 'paid' THEN shipped_at END AS shipped_at,
    CASE WHEN status IN ('delivered', 'returned') THEN delivered_at END AS delivered_at,
    weight_g / 1000.0 AS weight_kg,
    round(4.0 + weight_g / 1000.0 * 0.85 + rnd(seed, 'ship-cost') * 3, 2)::DECIMAL(12, 2) AS shipping_cost
FROM fulfilled
ORDER BY order_id;

-- ---------------------------------------------------------------------------------------------------
-- Tables without declared keys, joined by column name only.
-- ---------------------------------------------------------------------------------------------------

CREATE TABLE web_sessions (
    session_id       BIGINT    NOT NULL,
    customer_id      INTEGER,
    started_at       TIMESTAMP NOT NULL,
    device           VARCHAR   NOT NULL,
    browser          VARCHAR   NOT NULL,
    utm_source       VARCHAR,
    product_id       INTEGER,
    page_views       INTEGER   NOT NULL,
    duration_seconds INTEGER   NOT NULL,
    converted        BOOLEAN   NOT NULL
);

INSERT INTO web_sessions
WITH raw AS (
    SELECT
        n AS seed,
        -- 45% of visitors never sign in.
        CASE WHEN rnd(n, 'anonymous') < 0.45 THEN NULL
             ELSE least(2500, 1 + floor(2500 * pow(rnd(n, 'session-customer'), 1.3)))::INTEGER END AS customer_id
    FROM range(1, 10001) AS r(n)
), timed AS (
    SELECT r.seed, r.customer_id,
        CASE WHEN r.customer_id IS NULL
            THEN plus_seconds(demo_start(),
                sqrt(rnd(r.seed, 'session-time')) * date_diff('second', demo_start(), demo_end()))
            ELSE plus_seconds(greatest(c.signed_up_at, demo_start()),
                rnd(r.seed, 'session-time') * date_diff('second', greatest(c.signed_up_at, demo_start()), demo_end()))
        END AS started_at
    FROM raw AS r LEFT JOIN customers AS c USING (customer_id)
)
SELECT
    5000000 + row_number() OVER (ORDER BY started_at, seed) AS session_id,
    customer_id,
    started_at,
    CASE WHEN rnd(seed, 'device') < 0.52 THEN 'mobile' WHEN rnd(seed, 'device') < 0.91 THEN 'desktop' ELSE 'tablet' END
        AS device,
    ['Chrome', 'Chrome', 'Safari', 'Safari', 'Firefox', 'Edge', 'Samsung Internet'][pick(seed, 'browser', 7)] AS browser,
    -- Direct visits carry no campaign source.
    CASE WHEN rnd(seed, 'utm') < 0.4 THEN NULL
         ELSE ['google', 'newsletter', 'instagram', 'facebook', 'affiliate', 'bing'][pick(seed, 'utm-source', 6)] END
        AS utm_source,
    CASE WHEN rnd(seed, 'landing') < 0.5 THEN NULL
         ELSE 1 + floor(240 * pow(rnd(seed, 'landing-product'), 1.5))::INTEGER % 240 END AS product_id,
    pick(seed, 'page-views', 18) AS page_views,
    (15 + hash(seed, 'duration') % 1800)::INTEGER AS duration_seconds,
    rnd(seed, 'converted') < CASE WHEN customer_id IS NULL THEN 0.02 ELSE 0.11 END AS converted
FROM timed
ORDER BY session_id;

CREATE TABLE product_reviews (
    review_id            INTEGER   NOT NULL,
    product_id           INTEGER   NOT NULL,
    customer_id          INTEGER   NOT NULL,
    order_id             BIGINT    NOT NULL,
    rating               SMALLINT  NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title                VARCHAR   NOT NULL,
    body                 VARCHAR,
    reviewed_at          TIMESTAMP NOT NULL,
    helpful_votes        INTEGER   NOT NULL,
    is_verified_purchase BOOLEAN   NOT NULL
);

INSERT INTO product_reviews
WITH candidates AS (
    SELECT
        i.order_id, i.line_number, i.product_id, o.customer_id, o.status, s.delivered_at,
        i.order_id * 10 + i.line_number AS seed
    FROM order_items AS i
    JOIN orders AS o USING (order_id)
    JOIN shipments AS s USING (order_id)
    WHERE o.status IN ('delivered', 'returned')
), reviewed AS (
    SELECT *,
        plus_seconds(delivered_at, 3600 + rnd(seed, 'review-delay') * 30 * 86400) AS reviewed_at,
        CASE
            WHEN status = 'returned' THEN pick(seed, 'bad-rating', 2)
            -- Each product has its own quality, so average ratings differ between products.
            WHEN rnd(seed, 'rating') < 0.08 + 0.12 * rnd(product_id, 'quality') THEN pick(seed, 'low-rating', 3)
            WHEN rnd(seed, 'rating') < 0.45 THEN 4
            ELSE 5
        END AS rating
    FROM candidates
    WHERE rnd(seed, 'reviews') < 0.09
)
SELECT
    row_number() OVER (ORDER BY reviewed_at, order_id, line_number)::INTEGER AS review_id,
    product_id,
    customer_id,
    order_id,
    rating::SMALLINT,
    CASE rating
        WHEN 5 THEN ['Love it', 'Exactly as described', 'Best purchase this year', 'Great quality'][pick(seed, 'title', 4)]
        WHEN 4 THEN ['Very good', 'Solid, minor quibbles', 'Good value', 'Would buy again'][pick(seed, 'title', 4)]
        WHEN 3 THEN ['It is fine', 'Average', 'Does the job'][pick(seed, 'title', 3)]
        ELSE ['Disappointed', 'Broke quickly', 'Not as pictured', 'Returned it'][pick(seed, 'title', 4)]
    END AS title,
    -- Many customers leave a rating without writing anything.
    CASE WHEN rnd(seed, 'has-body') < 0.4 THEN NULL ELSE
        CASE
            WHEN rating >= 4 THEN 'Arrived quickly and works well. ' || ['Sturdy build.', 'Fits perfectly.', 'Great for daily use.', 'Looks even better in person.'][pick(seed, 'body', 4)]
            WHEN rating = 3 THEN 'Okay for the price. ' || ['Packaging was damaged.', 'Smaller than expected.', 'Instructions were unclear.'][pick(seed, 'body', 3)]
            ELSE 'Would not recommend. ' || ['Stopped working after a week.', 'Quality is poor.', 'Colour differs from the photos.', 'Sizing runs very small.'][pick(seed, 'body', 4)]
        END
    END AS body,
    reviewed_at,
    (hash(seed, 'helpful') % CASE WHEN rating <= 2 THEN 40 ELSE 12 END)::INTEGER AS helpful_votes,
    TRUE AS is_verified_purchase
FROM reviewed
WHERE reviewed_at <= demo_end()
ORDER BY review_id;

-- ---------------------------------------------------------------------------------------------------
-- Views and documentation
-- ---------------------------------------------------------------------------------------------------

CREATE VIEW order_totals AS
SELECT
    o.order_id,
    o.customer_id,
    o.ordered_at,
    o.status,
    count(*) AS line_count,
    sum(i.quantity)::BIGINT AS units,
    sum(i.quantity * i.unit_price - i.discount)::DECIMAL(14, 2) AS items_total,
    o.shipping_fee,
    o.tax_amount,
    (sum(i.quantity * i.unit_price - i.discount) + o.shipping_fee + o.tax_amount)::DECIMAL(14, 2) AS order_total
FROM orders AS o
JOIN order_items AS i USING (order_id)
GROUP BY o.order_id, o.customer_id, o.ordered_at, o.status, o.shipping_fee, o.tax_amount;

CREATE VIEW monthly_revenue AS
WITH sales AS (
    SELECT
        date_trunc('month', ordered_at)::DATE AS month,
        count(*) AS orders,
        count(DISTINCT customer_id) AS customers,
        sum(items_total)::DECIMAL(14, 2) AS gross_sales
    FROM order_totals
    WHERE status NOT IN ('pending', 'cancelled')
    GROUP BY 1
), refunds AS (
    SELECT date_trunc('month', p.paid_at)::DATE AS month, sum(t.items_total)::DECIMAL(14, 2) AS refunded_sales
    FROM payments AS p
    JOIN order_totals AS t USING (order_id)
    WHERE p.is_refund
    GROUP BY 1
)
SELECT
    s.month,
    s.orders,
    s.customers,
    s.gross_sales,
    coalesce(r.refunded_sales, 0)::DECIMAL(14, 2) AS refunded_sales,
    (s.gross_sales - coalesce(r.refunded_sales, 0))::DECIMAL(14, 2) AS net_sales,
    (s.gross_sales / s.orders)::DECIMAL(12, 2) AS avg_order_value
FROM sales AS s
LEFT JOIN refunds AS r USING (month)
ORDER BY s.month;

COMMENT ON TABLE regions IS 'Sales regions; tax_rate is the sales tax or VAT charged on goods shipped there.';
COMMENT ON TABLE employees IS 'Staff: the CEO, regional sales managers, sales reps and the support team.';
COMMENT ON TABLE customers IS 'Customer accounts; customer ids follow sign-up order.';
COMMENT ON TABLE product_categories IS 'Two-level product category tree.';
COMMENT ON TABLE suppliers IS 'Companies the products are bought from.';
COMMENT ON TABLE products IS 'The product catalogue; list_price is the current price.';
COMMENT ON TABLE orders IS 'One row per customer order, 2023-01-01 to 2025-06-30.';
COMMENT ON TABLE order_items IS 'Order lines; the net line amount is quantity * unit_price - discount.';
COMMENT ON TABLE payments IS 'Charges and refunds; a returned order has one of each.';
COMMENT ON TABLE shipments IS 'One shipment per paid order.';
COMMENT ON TABLE web_sessions IS 'Website and app visits; customer_id is NULL for visitors who did not sign in. No declared keys.';
COMMENT ON TABLE product_reviews IS 'Verified-purchase product reviews. No declared keys.';
COMMENT ON VIEW order_totals IS 'Per-order totals: items net of discounts, shipping, tax.';
COMMENT ON VIEW monthly_revenue IS 'Monthly sales (net of discounts, before tax and shipping) and refunds.';

COMMENT ON COLUMN orders.status IS 'Order state on 2025-06-30: pending (not paid), paid (awaiting dispatch), shipped, delivered, returned or cancelled.';
COMMENT ON COLUMN orders.sales_rep_id IS 'The employee who took a phone order; NULL for web and app orders.';
COMMENT ON COLUMN customers.phone IS 'Optional; NULL when the customer gave no phone number.';
COMMENT ON COLUMN order_items.unit_price IS 'Price per unit at the time of the order, before the discount.';
COMMENT ON COLUMN payments.amount IS 'Always positive; is_refund tells charges from refunds.';
COMMENT ON COLUMN shipments.shipped_at IS 'NULL while the parcel is still in the warehouse.';
COMMENT ON COLUMN shipments.delivered_at IS 'NULL until the carrier confirms delivery.';
COMMENT ON COLUMN web_sessions.product_id IS 'The product page the visit landed on, if any.';
