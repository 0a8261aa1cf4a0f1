-- course: the schema its migrations build, updated_at triggers included.
-- Written by 'dbtool schema dump' (pg_dump --schema-only, without owners, privileges or
-- volatile lines). Do not edit: change a migration, then run 'dbtool schema dump'.
-- 'dbtool verify' and 'dbtool schema check' compare databases with this file.

--
-- Name: count_live_courses(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.count_live_courses() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_delta BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO v_delta FROM new_rows WHERE deleted_at IS NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT -count(*) INTO v_delta FROM old_rows WHERE deleted_at IS NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        v_delta := CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END;
    ELSE  -- TRUNCATE
        DELETE FROM course_counts;
        RETURN NULL;
    END IF;
    IF v_delta <> 0 THEN
        INSERT INTO course_counts AS c (slot, live_courses) VALUES (pg_backend_pid() % 32, v_delta)
        ON CONFLICT (slot) DO UPDATE SET live_courses = c.live_courses + EXCLUDED.live_courses;
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: course_search_document(character varying, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.course_search_document(p_name character varying, p_description text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT setweight(to_tsvector('english', coalesce(p_name, '')), 'A')
        || setweight(to_tsvector('english', coalesce(p_description, '')), 'B')
$$;


--
-- Name: enroll_student(uuid, uuid, character varying); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.enroll_student(p_course_id uuid, p_student_id uuid, p_student_name character varying) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_max INTEGER;
    v_current INTEGER;
    v_enrollment_id UUID;
BEGIN
    -- The specification locks FOR UPDATE; NO KEY UPDATE serialises enrollers just the same and
    -- does not block plain foreign key checks of other writers.
    SELECT max_students, current_students INTO v_max, v_current
    FROM courses
    WHERE id = p_course_id AND deleted_at IS NULL
    FOR NO KEY UPDATE;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'course % does not exist', p_course_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v_current >= v_max THEN
        RAISE EXCEPTION 'course is full' USING ERRCODE = 'check_violation',
            DETAIL = format('course %s has %s of %s seats taken', p_course_id, v_current, v_max);
    END IF;

    INSERT INTO enrollments (course_id, student_id, student_name)
    VALUES (p_course_id, p_student_id, p_student_name)
    RETURNING id INTO v_enrollment_id;

    UPDATE courses SET current_students = current_students + 1 WHERE id = p_course_id;
    RETURN v_enrollment_id;
END;
$$;


--
-- Name: guard_course_capacity(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.guard_course_capacity() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_course UUID;
    v_max INTEGER;
    v_enrolled BIGINT;
BEGIN
    -- Lock in id order so two guards never wait on each other; NO KEY UPDATE does not conflict
    -- with the KEY SHARE lock the foreign key check already holds on the same rows.
    PERFORM 1 FROM courses
    WHERE id IN (SELECT course_id FROM new_rows WHERE status = 'enrolled')
    ORDER BY id
    FOR NO KEY UPDATE;

    -- A new statement, so a new snapshot: it counts what the transactions we waited for committed.
    SELECT c.id, c.max_students, e.enrolled INTO v_course, v_max, v_enrolled
    FROM courses c
    JOIN (SELECT course_id, count(*) AS enrolled
          FROM enrollments
          WHERE status = 'enrolled'
            AND course_id IN (SELECT course_id FROM new_rows WHERE status = 'enrolled')
          GROUP BY course_id) e ON e.course_id = c.id
    WHERE e.enrolled > c.max_students
    LIMIT 1;

    IF FOUND THEN
        RAISE EXCEPTION 'course is full' USING ERRCODE = 'check_violation',
            DETAIL = format('course %s would have %s enrolled students for %s seats', v_course, v_enrolled, v_max);
    END IF;
    RETURN NULL;
END;
$$;


--
-- Name: update_updated_at_column(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$;


--
-- Name: course_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.course_counts (
    slot smallint NOT NULL,
    live_courses bigint DEFAULT 0 NOT NULL,
    CONSTRAINT course_counts_slot_check CHECK (((slot >= 0) AND (slot < 32)))
);


--
-- Name: courses; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.courses (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name character varying(200) NOT NULL,
    description text,
    price integer NOT NULL,
    instructor_id uuid NOT NULL,
    instructor_name character varying(200) NOT NULL,
    duration_minutes integer NOT NULL,
    max_students integer DEFAULT 10,
    current_students integer DEFAULT 0,
    category character varying(50),
    level character varying(20),
    schedule jsonb,
    is_published boolean DEFAULT true,
    created_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    deleted_at timestamp without time zone,
    CONSTRAINT courses_capacity_check CHECK ((current_students <= max_students)),
    CONSTRAINT courses_current_students_check CHECK ((current_students >= 0)),
    CONSTRAINT courses_duration_minutes_check CHECK ((duration_minutes >= 30)),
    CONSTRAINT courses_max_students_check CHECK ((max_students > 0)),
    CONSTRAINT courses_price_check CHECK ((price >= 0))
);


--
-- Name: enrollments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.enrollments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    course_id uuid NOT NULL,
    student_id uuid NOT NULL,
    student_name character varying(200) NOT NULL,
    status character varying(20) DEFAULT 'enrolled'::character varying,
    enrolled_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    completed_at timestamp without time zone,
    CONSTRAINT enrollments_status_check CHECK (((status)::text = ANY ((ARRAY['enrolled'::character varying, 'completed'::character varying, 'cancelled'::character varying])::text[])))
);


--
-- Name: course_counts course_counts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.course_counts
    ADD CONSTRAINT course_counts_pkey PRIMARY KEY (slot);


--
-- Name: courses courses_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.courses
    ADD CONSTRAINT courses_pkey PRIMARY KEY (id);


--
-- Name: enrollments enrollments_course_id_student_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.enrollments
    ADD CONSTRAINT enrollments_course_id_student_id_key UNIQUE (course_id, student_id);


--
-- Name: enrollments enrollments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.enrollments
    ADD CONSTRAINT enrollments_pkey PRIMARY KEY (id);


--
-- Name: idx_courses_category; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_category ON public.courses USING btree (category);


--
-- Name: idx_courses_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_created_at ON public.courses USING btree (created_at);


--
-- Name: idx_courses_deleted_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_deleted_at ON public.courses USING btree (deleted_at);


--
-- Name: idx_courses_instructor_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_instructor_id ON public.courses USING btree (instructor_id);


--
-- Name: idx_courses_level; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_level ON public.courses USING btree (level);


--
-- Name: idx_courses_live_created_at_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_live_created_at_id ON public.courses USING btree (created_at, id) WHERE (deleted_at IS NULL);


--
-- Name: idx_courses_price; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_price ON public.courses USING btree (price);


--
-- Name: idx_courses_search; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_courses_search ON public.courses USING gin (public.course_search_document(name, description));


--
-- Name: idx_enrollments_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_enrollments_status ON public.enrollments USING btree (status);


--
-- Name: idx_enrollments_student_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_enrollments_student_id ON public.enrollments USING btree (student_id);


--
-- Name: courses count_live_courses_on_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER count_live_courses_on_delete AFTER DELETE ON public.courses REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.count_live_courses();


--
-- Name: courses count_live_courses_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER count_live_courses_on_insert AFTER INSERT ON public.courses REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.count_live_courses();


--
-- Name: courses count_live_courses_on_soft_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER count_live_courses_on_soft_delete AFTER UPDATE OF deleted_at ON public.courses FOR EACH ROW WHEN (((old.deleted_at IS NULL) IS DISTINCT FROM (new.deleted_at IS NULL))) EXECUTE FUNCTION public.count_live_courses();


--
-- Name: courses count_live_courses_on_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER count_live_courses_on_truncate AFTER TRUNCATE ON public.courses FOR EACH STATEMENT EXECUTE FUNCTION public.count_live_courses();


--
-- Name: enrollments guard_course_capacity_on_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER guard_course_capacity_on_insert AFTER INSERT ON public.enrollments REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.guard_course_capacity();


--
-- Name: enrollments guard_course_capacity_on_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER guard_course_capacity_on_update AFTER UPDATE ON public.enrollments REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.guard_course_capacity();


--
-- Name: courses update_courses_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER update_courses_updated_at BEFORE UPDATE ON public.courses FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: enrollments enrollments_course_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.enrollments
    ADD CONSTRAINT enrollments_course_id_fkey FOREIGN KEY (course_id) REFERENCES public.courses(id) ON DELETE CASCADE;
