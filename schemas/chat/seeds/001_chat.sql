-- Development chat sessions of identity seed users (same ids), with their messages.
-- Safe to run again: existing rows are left alone.
INSERT INTO chat_sessions (id, user_id, title, is_active) VALUES
    ('00000000-0000-4000-8000-000000000501', '00000000-0000-4000-8000-000000000201', 'Choosing a first guitar', true),
    ('00000000-0000-4000-8000-000000000502', '00000000-0000-4000-8000-000000000202', 'A practice plan for piano', true),
    ('00000000-0000-4000-8000-000000000503', '00000000-0000-4000-8000-000000000103', 'Warm-up ideas for a choir', false)
ON CONFLICT DO NOTHING;

INSERT INTO chat_messages (id, session_id, role, content, tokens_used) VALUES
    ('00000000-0000-4000-8000-000000000601', '00000000-0000-4000-8000-000000000501', 'user', 'Should I start on a nylon or a steel string guitar?', 14),
    ('00000000-0000-4000-8000-000000000602', '00000000-0000-4000-8000-000000000501', 'assistant', 'Nylon strings are gentler on the fingers; steel strings suit folk and pop.', 22),
    ('00000000-0000-4000-8000-000000000603', '00000000-0000-4000-8000-000000000502', 'user', 'How long should I practise each day?', 10),
    ('00000000-0000-4000-8000-000000000604', '00000000-0000-4000-8000-000000000502', 'assistant', 'Twenty focused minutes a day beat two hours once a week.', 18),
    ('00000000-0000-4000-8000-000000000605', '00000000-0000-4000-8000-000000000502', 'user', 'Scales first or pieces first?', 8),
    ('00000000-0000-4000-8000-000000000606', '00000000-0000-4000-8000-000000000502', 'assistant', 'Warm up with a scale, then spend most of the time on a piece.', 19),
    ('00000000-0000-4000-8000-000000000607', '00000000-0000-4000-8000-000000000503', 'user', 'Give me three warm-ups for a mixed choir.', 11),
    ('00000000-0000-4000-8000-000000000608', '00000000-0000-4000-8000-000000000503', 'assistant', 'Lip trills on a fifth, sirens, and a descending "nay" on 5-4-3-2-1.', 25)
ON CONFLICT DO NOTHING;
