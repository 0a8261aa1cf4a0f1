-- Development users: three instructors and five students with fixed ids, so the course and chat
-- seeds can point at them (soft references). Safe to run again: existing rows are left alone.
-- The password hashes are placeholders, not hashes of any password: set one before logging in.
INSERT INTO users (id, email, password_hash, role, name, phone, bio, email_verified) VALUES
    ('00000000-0000-4000-8000-000000000101', 'maria.santos@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0101', 'instructor', 'Maria Santos', '+1-555-0101', 'Classical and fingerstyle guitar teacher.', true),
    ('00000000-0000-4000-8000-000000000102', 'kenji.watanabe@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0102', 'instructor', 'Kenji Watanabe', '+1-555-0102', 'Jazz pianist and composer.', true),
    ('00000000-0000-4000-8000-000000000103', 'aisha.bello@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0103', 'instructor', 'Aisha Bello', NULL, 'Vocal coach for choirs and soloists.', true),
    ('00000000-0000-4000-8000-000000000201', 'liam.carter@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0201', 'student', 'Liam Carter', NULL, NULL, true),
    ('00000000-0000-4000-8000-000000000202', 'sofia.rossi@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0202', 'student', 'Sofia Rossi', NULL, NULL, true),
    ('00000000-0000-4000-8000-000000000203', 'noah.keller@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0203', 'student', 'Noah Keller', NULL, NULL, false),
    ('00000000-0000-4000-8000-000000000204', 'emma.dubois@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0204', 'student', 'Emma Dubois', NULL, NULL, true),
    ('00000000-0000-4000-8000-000000000205', 'yuki.tanaka@example.com', '$2b$12$dev.placeholder.not.a.real.hash.0205', 'student', 'Yuki Tanaka', NULL, NULL, true)
ON CONFLICT DO NOTHING;
