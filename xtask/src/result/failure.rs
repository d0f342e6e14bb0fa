/// Why a case did not pass: the kernel broke a rule (a failed step or check: FAIL), or the
/// case or the bench went wrong before it could say (ERROR).
pub enum Failure {
    Case(String),
    Bench(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Bench(e)
    }
}
