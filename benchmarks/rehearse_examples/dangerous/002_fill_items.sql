INSERT INTO items SELECT g, g % 1000, md5(g::text) FROM generate_series(1, 1000000) g;
