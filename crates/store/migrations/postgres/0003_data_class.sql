-- DP-4: the class of data a key's requests carry (public, internal, confidential, pii, phi).
-- NULL: the route's class alone decides.
ALTER TABLE virtual_keys ADD COLUMN data_class TEXT;
