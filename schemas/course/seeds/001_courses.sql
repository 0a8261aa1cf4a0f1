-- Development courses across the specification's categories and levels, taught by the identity
-- seed's instructors (same ids, same names). current_students equals each course's enrolled rows
-- below. Safe to run again: existing rows are left alone.
INSERT INTO courses (id, name, description, price, instructor_id, instructor_name, duration_minutes,
                     max_students, current_students, category, level, schedule) VALUES
    ('00000000-0000-4000-8000-000000000301', 'Guitar Foundations', 'Chords, strumming and your first songs.', 4900,
     '00000000-0000-4000-8000-000000000101', 'Maria Santos', 60, 10, 3, 'guitar', 'beginner', '["Mon 18:00", "Thu 18:00"]'),
    ('00000000-0000-4000-8000-000000000302', 'Fingerstyle Guitar', 'Travis picking, arpeggios and arranging melodies.', 6900,
     '00000000-0000-4000-8000-000000000101', 'Maria Santos', 90, 6, 2, 'guitar', 'intermediate', '["Sat 10:00"]'),
    ('00000000-0000-4000-8000-000000000303', 'Piano for Beginners', 'Reading notes, posture and simple pieces with both hands.', 5900,
     '00000000-0000-4000-8000-000000000102', 'Kenji Watanabe', 45, 12, 2, 'piano', 'beginner', '["Tue 17:00", "Fri 17:00"]'),
    ('00000000-0000-4000-8000-000000000304', 'Jazz Piano Harmony', 'Voicings, ii-V-I progressions and reharmonisation.', 9900,
     '00000000-0000-4000-8000-000000000102', 'Kenji Watanabe', 60, 4, 1, 'piano', 'advanced', '["Wed 19:00"]'),
    ('00000000-0000-4000-8000-000000000305', 'Breath and Voice', 'Warm-ups, breathing and healthy singing habits.', 3900,
     '00000000-0000-4000-8000-000000000103', 'Aisha Bello', 30, 15, 2, 'vocal', 'beginner', '["Mon 12:00"]'),
    ('00000000-0000-4000-8000-000000000306', 'Stage Performance for Singers', 'Repertoire, microphone technique and stage presence.', 8900,
     '00000000-0000-4000-8000-000000000103', 'Aisha Bello', 120, 5, 0, 'vocal', 'advanced', '["Sun 15:00"]')
ON CONFLICT DO NOTHING;

INSERT INTO enrollments (id, course_id, student_id, student_name) VALUES
    ('00000000-0000-4000-8000-000000000401', '00000000-0000-4000-8000-000000000301', '00000000-0000-4000-8000-000000000201', 'Liam Carter'),
    ('00000000-0000-4000-8000-000000000402', '00000000-0000-4000-8000-000000000301', '00000000-0000-4000-8000-000000000202', 'Sofia Rossi'),
    ('00000000-0000-4000-8000-000000000403', '00000000-0000-4000-8000-000000000301', '00000000-0000-4000-8000-000000000203', 'Noah Keller'),
    ('00000000-0000-4000-8000-000000000404', '00000000-0000-4000-8000-000000000302', '00000000-0000-4000-8000-000000000201', 'Liam Carter'),
    ('00000000-0000-4000-8000-000000000405', '00000000-0000-4000-8000-000000000302', '00000000-0000-4000-8000-000000000204', 'Emma Dubois'),
    ('00000000-0000-4000-8000-000000000406', '00000000-0000-4000-8000-000000000303', '00000000-0000-4000-8000-000000000202', 'Sofia Rossi'),
    ('00000000-0000-4000-8000-000000000407', '00000000-0000-4000-8000-000000000303', '00000000-0000-4000-8000-000000000205', 'Yuki Tanaka'),
    ('00000000-0000-4000-8000-000000000408', '00000000-0000-4000-8000-000000000304', '00000000-0000-4000-8000-000000000205', 'Yuki Tanaka'),
    ('00000000-0000-4000-8000-000000000409', '00000000-0000-4000-8000-000000000305', '00000000-0000-4000-8000-000000000203', 'Noah Keller'),
    ('00000000-0000-4000-8000-000000000410', '00000000-0000-4000-8000-000000000305', '00000000-0000-4000-8000-000000000204', 'Emma Dubois')
ON CONFLICT DO NOTHING;
