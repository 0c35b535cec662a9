-- Placeholder on branch issue-15b only: migration 0013 belongs to another branch. Drop this
-- file when merging (that branch's 0013 takes its place; migrations are numbered without gaps).
SELECT 1;
