-- danger: data-loss
TRUNCATE enrollments CASCADE;
