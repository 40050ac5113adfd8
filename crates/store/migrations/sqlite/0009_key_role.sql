-- AC-3: the role a virtual key is bound to on the data plane. NULL: `app` (chat, messages,
-- embeddings). `data-steward`: may also use the fine-tuning file and job endpoints.
ALTER TABLE virtual_keys ADD COLUMN role TEXT;
