-- Bearer tokens for enterprises' own systems: an enterprise token reads that enterprise's
-- events and the events on its products (EPCIS queries, exports), nothing else.
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_role_check;
ALTER TABLE access_tokens
    ADD CONSTRAINT access_tokens_role_check
        CHECK (role IN ('inspector', 'regulator', 'enterprise'));
ALTER TABLE access_tokens ADD COLUMN enterprise_id bigint REFERENCES enterprises (id);
-- An enterprise token names its enterprise; an authority's token names none.
ALTER TABLE access_tokens
    ADD CONSTRAINT access_tokens_enterprise_check
        CHECK ((role = 'enterprise') = (enterprise_id IS NOT NULL));
CREATE INDEX access_tokens_enterprise ON access_tokens (enterprise_id)
    WHERE enterprise_id IS NOT NULL;
