CREATE TABLE items (id bigint PRIMARY KEY, v int, note text);
