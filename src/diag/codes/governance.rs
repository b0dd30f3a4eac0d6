//! `G` codes: governance (labels, policies, consent, waivers).

declare_codes! {
    POLICY_VIOLATION = "G0001", Error, "a dataflow sends labels that an enabled policy denies";
    ADVISORY_POLICY = "G0002", Warning, "a dataflow matches an advisory policy";
    INVALID_DENY = "G0003", Error, "a policy's deny expression does not parse";
    UNKNOWN_DENY_LABEL = "G0004", Error, "a deny expression names no label";
    CORE_POLICY_WITHOUT_REASON = "G0005", Error, "a core policy is disabled without a reason";
    WAIVER_NOT_SOFT = "G0006", Error, "a waiver names a policy that cannot be waived";
    WAIVER_EXPIRED = "G0007", Error, "a waiver has expired";
    WAIVER_UNUSED = "G0008", Warning, "a waiver covers no violation";
    CONSENT_UNSATISFIABLE = "G0009", Error, "a person-level export cannot apply a consent policy";
    CORE_POLICY_REDEFINED = "G0010", Error, "a restated core policy changes its built-in rule";
    DENY_TOO_DEEP = "G0011", Error, "a deny expression nests parentheses too deep";
}
