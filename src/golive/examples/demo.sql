-- The demo order's SQL for the orders service.
CREATE TABLE coupons (code VARCHAR(20) PRIMARY KEY, percent INTEGER NOT NULL);
INSERT INTO coupons (code, percent) VALUES ('WELCOME;10', 10);
