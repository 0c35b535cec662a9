-- Placeholder on branch issue-12 only: migration 0014 belongs to another branch. Drop this
-- file when merging (that branch's 0014 takes its place; migrations are numbered without gaps).
SELECT 1;
