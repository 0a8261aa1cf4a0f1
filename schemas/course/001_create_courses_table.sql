-- Courses offered by instructors (spec: Course Service, Courses Table).
-- instructor_id is a soft reference to identity_db.users: no foreign key across services.
CREATE TABLE courses (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(200) NOT NULL,
    description TEXT,
    price INTEGER NOT NULL CHECK (price >= 0),
    instructor_id UUID NOT NULL,
    instructor_name VARCHAR(200) NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes >= 30),
    max_students INTEGER DEFAULT 10 CHECK (max_students > 0),
    current_students INTEGER DEFAULT 0 CHECK (current_students >= 0),
    category VARCHAR(50),
    level VARCHAR(20),
    schedule JSONB,
    is_published BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    deleted_at TIMESTAMP NULL
);

CREATE INDEX idx_courses_instructor_id ON courses(instructor_id);
CREATE INDEX idx_courses_category ON courses(category);
CREATE INDEX idx_courses_level ON courses(level);
CREATE INDEX idx_courses_price ON courses(price);
CREATE INDEX idx_courses_created_at ON courses(created_at);
CREATE INDEX idx_courses_deleted_at ON courses(deleted_at);

CREATE INDEX idx_courses_name_search ON courses USING gin(to_tsvector('english', name));
CREATE INDEX idx_courses_description_search ON courses USING gin(to_tsvector('english', description));
