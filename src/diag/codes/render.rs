//! `P01xx` codes: rendering the plan into jobs.

declare_codes! {
    NOT_LOWERABLE = "P0201", Error, "an expression cannot be lowered to SQL for a dialect";
    TEMPLATE_ERROR = "P0202", Error, "a render template does not parse or render";
}
