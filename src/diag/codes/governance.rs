//! `G` codes: governance (labels, policies, consent, waivers).

declare_codes! {}
