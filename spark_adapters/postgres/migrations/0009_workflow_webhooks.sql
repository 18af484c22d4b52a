-- webhook_url: where a workflow's failed and recovered runs are announced, besides the global
-- webhook (null: only the global one).
ALTER TABLE workflows ADD COLUMN webhook_url text;
