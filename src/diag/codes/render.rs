//! `P01xx` codes: rendering the plan into jobs.

declare_codes! {
    NOT_LOWERABLE = "P0101", Error, "an expression cannot be lowered to SQL for a dialect";
    TEMPLATE_ERROR = "P0102", Error, "a render template does not parse or render";
}
