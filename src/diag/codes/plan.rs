//! `P` codes: activation checks, plan and guardrails.

declare_codes! {}
