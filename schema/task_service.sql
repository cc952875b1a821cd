-- Task Service database schema: the six tables moved from the MyTeacher monolith (seeds 000-002).
--
-- Column shapes follow the monolith so AWS DMS can replicate rows unchanged. Foreign keys to
-- users, groups, tags and task_proposals are dropped: those tables stay in the monolith and are
-- referenced over REST. Foreign keys among the six tables are kept.
-- 13 indexes in all: 6 primary keys + 7 secondary indexes. 2 updated_at triggers.
-- Idempotent: safe to run again (IF NOT EXISTS, CREATE OR REPLACE, drop-and-create triggers).

CREATE TABLE IF NOT EXISTS tasks (
    id                  BIGSERIAL PRIMARY KEY,
    user_id             BIGINT NOT NULL,
    source_proposal_id  BIGINT,
    assigned_by_user_id BIGINT,
    approved_by_user_id BIGINT,
    title               VARCHAR(255) NOT NULL,
    description         TEXT,
    due_date            VARCHAR(255),
    span                INTEGER,
    priority            SMALLINT DEFAULT 3,
    group_task_id       UUID,
    reward              INTEGER,
    requires_approval   BOOLEAN DEFAULT FALSE,
    requires_image      BOOLEAN DEFAULT FALSE,
    approved_at         TIMESTAMP,
    is_completed        BOOLEAN DEFAULT FALSE,
    completed_at        TIMESTAMP,
    created_at          TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at          TIMESTAMP NOT NULL DEFAULT NOW(),
    deleted_at          TIMESTAMP
);

CREATE TABLE IF NOT EXISTS task_images (
    id          BIGSERIAL PRIMARY KEY,
    task_id     BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    file_path   VARCHAR(255) NOT NULL,
    approved_at TIMESTAMP,
    delete_at   TIMESTAMP,
    created_at  TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at  TIMESTAMP NOT NULL DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS task_tag (
    task_id BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag_id  BIGINT NOT NULL,
    PRIMARY KEY (task_id, tag_id)
);

CREATE TABLE IF NOT EXISTS scheduled_group_tasks (
    id                         BIGSERIAL PRIMARY KEY,
    group_id                   BIGINT NOT NULL,
    created_by                 BIGINT NOT NULL,
    assigned_user_id           BIGINT,
    title                      VARCHAR(255) NOT NULL,
    description                TEXT,
    requires_image             BOOLEAN DEFAULT FALSE,
    requires_approval          BOOLEAN DEFAULT FALSE,
    reward                     INTEGER DEFAULT 0,
    auto_assign                BOOLEAN DEFAULT FALSE,
    schedules                  JSONB NOT NULL DEFAULT '[]'::jsonb,
    due_duration_days          INTEGER,
    due_duration_hours         INTEGER,
    start_date                 DATE NOT NULL,
    end_date                   DATE,
    skip_holidays              BOOLEAN DEFAULT FALSE,
    move_to_next_business_day  BOOLEAN DEFAULT FALSE,
    delete_incomplete_previous BOOLEAN DEFAULT TRUE,
    is_active                  BOOLEAN DEFAULT TRUE,
    created_at                 TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at                 TIMESTAMP NOT NULL DEFAULT NOW(),
    deleted_at                 TIMESTAMP
);

CREATE TABLE IF NOT EXISTS scheduled_task_executions (
    id                BIGSERIAL PRIMARY KEY,
    scheduled_task_id BIGINT NOT NULL REFERENCES scheduled_group_tasks (id) ON DELETE CASCADE,
    executed_at       TIMESTAMP NOT NULL,
    status            VARCHAR(20) NOT NULL,
    created_task_id   BIGINT REFERENCES tasks (id) ON DELETE SET NULL,
    deleted_task_id   BIGINT,
    note              TEXT,
    error_message     TEXT,
    created_at        TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at        TIMESTAMP NOT NULL DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS scheduled_task_tags (
    id                BIGSERIAL PRIMARY KEY,
    scheduled_task_id BIGINT NOT NULL REFERENCES scheduled_group_tasks (id) ON DELETE CASCADE,
    tag_name          VARCHAR(255) NOT NULL,
    created_at        TIMESTAMP NOT NULL DEFAULT NOW(),
    updated_at        TIMESTAMP NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_tasks_user_id ON tasks (user_id);
CREATE INDEX IF NOT EXISTS idx_tasks_group_task_id ON tasks (group_task_id);
CREATE INDEX IF NOT EXISTS idx_task_images_task_id ON task_images (task_id);
CREATE INDEX IF NOT EXISTS idx_task_tag_tag_id ON task_tag (tag_id);
CREATE INDEX IF NOT EXISTS idx_scheduled_group_tasks_group_active ON scheduled_group_tasks (group_id, is_active);
CREATE INDEX IF NOT EXISTS idx_scheduled_task_executions_task_executed ON scheduled_task_executions (scheduled_task_id, executed_at);
CREATE INDEX IF NOT EXISTS idx_scheduled_task_tags_scheduled_task_id ON scheduled_task_tags (scheduled_task_id);

-- Bumps updated_at only when the writer did not set it, so rows replicated by DMS keep the
-- source's value and the integrity checksum still matches.
CREATE OR REPLACE FUNCTION task_service_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := NOW();
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS trg_tasks_updated_at ON tasks;
CREATE TRIGGER trg_tasks_updated_at
    BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION task_service_set_updated_at();

DROP TRIGGER IF EXISTS trg_scheduled_group_tasks_updated_at ON scheduled_group_tasks;
CREATE TRIGGER trg_scheduled_group_tasks_updated_at
    BEFORE UPDATE ON scheduled_group_tasks
    FOR EACH ROW EXECUTE FUNCTION task_service_set_updated_at();
