"""Who may see which patient, and the record of who did: identities and roles, API keys, single
sign-on tokens, the audit trail (used by cxrneo/api and the `cxrneo users` / `cxrneo audit` commands)."""
