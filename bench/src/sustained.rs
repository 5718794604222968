//! `sustained`: the sustained-load knee of a server. Fanout steps with more
//! and more clients per document (a fresh server per run, medians over
//! `--repeat` runs), stopping at the first step that does not pass: latency
//! p99 above the limit, a failed check, or a saturated generator. The knee
//! is the highest passing step.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use crate::{measure, Common, Scenario, Setup, SustainedArgs};

/// What became of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Valid, every check passed, p99 within the limit.
    Pass,
    /// The generator's core was saturated: the step says nothing about the
    /// server, whose knee is at least the last passing load.
    GeneratorBound,
    /// A check failed (delivery ratio, convergence, silent losses) or a
    /// run did not complete.
    Failed(String),
    /// Valid and correct, but the median p99 is above the limit.
    OverLimit { p99_ms: f64 },
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// A short label, for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::GeneratorBound => "generator bound",
            Verdict::Failed(_) => "checks failed",
            Verdict::OverLimit { .. } => "p99 > limit",
        }
    }

    /// Why the step did not pass (None when it did).
    pub fn why(&self, limit_ms: f64) -> Option<String> {
        match self {
            Verdict::Pass => None,
            Verdict::GeneratorBound => Some("the generator's core was saturated".into()),
            Verdict::Failed(p) => Some(p.clone()),
            Verdict::OverLimit { p99_ms } => {
                Some(format!("latency p99 {p99_ms:.1} ms > {limit_ms} ms"))
            }
        }
    }
}

/// Judges one step from the summary `measure` returned for it (`valid`,
/// `passed`, `problems`, `median`, `runs`).
pub fn judge(summary: &Value, limit_ms: f64) -> Verdict {
    let valid = summary["valid"] == json!(true);
    let ran = summary["runs"].as_array().is_some_and(|r| !r.is_empty());
    // Runs that completed but are not valid: only a saturated generator
    // makes a completed run invalid.
    if !valid && ran {
        return Verdict::GeneratorBound;
    }
    if !valid || summary["passed"] != json!(true) {
        let problems: Vec<&str> = summary["problems"]
            .as_array()
            .map(|ps| ps.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return Verdict::Failed(if problems.is_empty() {
            "no run completed".into()
        } else {
            problems.join("; ")
        });
    }
    match summary["median"]["latency_p99_ms"].as_f64() {
        Some(p99) if p99 <= limit_ms => Verdict::Pass,
        Some(p99) => Verdict::OverLimit { p99_ms: p99 },
        None => Verdict::Failed("no latency figures".into()),
    }
}

/// One element of `steps` in the JSON line. Figures are the medians over
/// the step's runs (null when the generator was saturated).
pub fn step_json(clients: usize, summary: &Value, verdict: &Verdict, limit_ms: f64) -> Value {
    let m = &summary["median"];
    json!({
        "clients": clients,
        "deliveries_per_s": m["deliveries_per_s"],
        "latency_p50_ms": m["latency_p50_ms"],
        "latency_p99_ms": m["latency_p99_ms"],
        "server_cpu_util": m["server_cpu_util"],
        "delivery_ratio": m["delivery_ratio"],
        "rooms_converged": m["rooms_converged"],
        "valid": summary["valid"] == json!(true),
        "checks_passed": summary["passed"] == json!(true),
        "passed": verdict.passed(),
        "result": verdict.label(),
        "why": verdict.why(limit_ms),
        "problems": summary["problems"],
        "warnings": summary["warnings"],
    })
}

/// The highest passing step, or null.
pub fn knee(steps: &[Value]) -> Value {
    steps
        .iter()
        .filter(|s| s["passed"] == json!(true))
        .max_by_key(|s| s["clients"].as_u64().unwrap_or(0))
        .map_or(Value::Null, |s| {
            json!({
                "clients": s["clients"],
                "deliveries_per_s": s["deliveries_per_s"],
                "latency_p99_ms": s["latency_p99_ms"],
            })
        })
}

/// Why the steps stopped, from the verdicts of the steps that ran (the
/// last one is the one that stopped them, unless every step passed).
pub fn stopped_because(verdicts: &[(usize, Verdict)], limit_ms: f64) -> String {
    let Some((c, last)) = verdicts.last() else {
        return "no step ran".into();
    };
    let any_passed = verdicts.iter().any(|(_, v)| v.passed());
    match last {
        Verdict::Pass => format!(
            "every step passed, up to {c} clients per document: the knee is above the highest load tried"
        ),
        Verdict::GeneratorBound if any_passed => format!(
            "at {c} clients per document the generator's core was saturated: the server's knee is at least the last passing load"
        ),
        Verdict::GeneratorBound => format!(
            "at {c} clients per document the generator's core was saturated, before any step passed"
        ),
        Verdict::OverLimit { p99_ms } => format!(
            "at {c} clients per document latency p99 was {p99_ms:.1} ms > {limit_ms} ms"
        ),
        Verdict::Failed(p) => format!("at {c} clients per document the checks failed: {p}"),
    }
}

/// Whether the knee of a result line is only a lower bound: the generator
/// was saturated, or every step passed.
pub fn knee_is_lower_bound(result: &Value) -> bool {
    result["generator_bound"] == json!(true)
        || result["steps"]
            .as_array()
            .and_then(|s| s.last())
            .is_some_and(|s| s["passed"] == json!(true))
}

/// "knee vs hocuspocus" for one server: its knee deliveries/s over
/// Hocuspocus'. A knee that is only a lower bound makes the ratio one too
/// (or an upper bound when it is Hocuspocus').
pub fn ratio_text(knee: Option<f64>, lower: bool, base: Option<f64>, base_lower: bool) -> String {
    match (knee, base) {
        (None, _) => "no passing step".into(),
        (_, None) => "-".into(),
        (Some(_), Some(b)) if b <= 0.0 => "-".into(),
        (Some(k), Some(b)) => {
            let r = k / b;
            match (lower, base_lower) {
                (true, false) => format!("≥ {r:.2}×"),
                (false, true) => format!("≤ {r:.2}×"),
                (true, true) => format!("{r:.2}× (both knees are lower bounds)"),
                (false, false) => format!("{r:.2}×"),
            }
        }
    }
}

fn check_args(a: &SustainedArgs) -> Result<()> {
    if a.clients.is_empty() {
        bail!("--clients needs at least one step");
    }
    if a.clients.iter().any(|&c| c < 2) {
        bail!("every step needs at least 2 clients per document");
    }
    if a.clients.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--clients must be ascending, e.g. 10,20,40");
    }
    if a.docs == 0 {
        bail!("--docs must be at least 1");
    }
    if !(a.p99_limit_ms.is_finite() && a.p99_limit_ms > 0.0) {
        bail!("--p99-limit-ms must be a positive number");
    }
    Ok(())
}

fn num(v: &Value, decimals: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.decimals$}"),
        None => "-".into(),
    }
}

/// The human table of the steps.
fn steps_table(steps: &[Value], docs: usize) -> String {
    let mut t = format!(
        "  {:>11} {:>13} {:>8} {:>8} {:>10} {:>8} {:>9} {:>6}  {}\n",
        "clients/doc",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "server cpu",
        "ratio",
        "converged",
        "valid",
        "result"
    );
    for s in steps {
        let rooms = match s["rooms_converged"].as_u64() {
            Some(r) => format!("{r}/{docs}"),
            None => "-".into(),
        };
        t.push_str(&format!(
            "  {:>11} {:>13} {:>8} {:>8} {:>10} {:>8} {:>9} {:>6}  {}\n",
            num(&s["clients"], 0),
            num(&s["deliveries_per_s"], 0),
            num(&s["latency_p50_ms"], 2),
            num(&s["latency_p99_ms"], 2),
            num(&s["server_cpu_util"], 2),
            num(&s["delivery_ratio"], 4),
            rooms,
            if s["valid"] == json!(true) {
                "yes"
            } else {
                "no"
            },
            s["result"].as_str().unwrap_or("?"),
        ));
    }
    t
}

/// Runs the steps; returns the scenario's fields for the JSON line and
/// whether at least one step passed.
pub async fn run(
    common: &Common,
    a: &SustainedArgs,
    s: &Setup,
) -> Result<(Map<String, Value>, bool)> {
    check_args(a)?;
    let limit = a.p99_limit_ms;
    let mut steps = Vec::new();
    let mut verdicts = Vec::new();
    for &c in &a.clients {
        let scenario = Scenario::Fanout(a.step(c));
        let label = format!("sustained {c} clients/doc");
        let (summary, _, _) = measure(common, &scenario, s, &[], &label).await;
        let verdict = judge(&summary, limit);
        let step = step_json(c, &summary, &verdict, limit);
        eprintln!(
            "coform-bench: sustained {c} clients/doc: {} deliveries/s, p99 {} ms: {}",
            num(&step["deliveries_per_s"], 0),
            num(&step["latency_p99_ms"], 2),
            verdict.label()
        );
        steps.push(step);
        let passed = verdict.passed();
        verdicts.push((c, verdict));
        if !passed {
            break;
        }
    }
    let knee = knee(&steps);
    let stopped = stopped_because(&verdicts, limit);
    let generator_bound = matches!(verdicts.last(), Some((_, Verdict::GeneratorBound)));
    let ok = !knee.is_null();
    let lower = generator_bound || verdicts.last().is_some_and(|(_, v)| v.passed());

    eprintln!(
        "\nsustained against {}: {} documents, one edit per client every {} ms, p99 limit {} ms (medians of {})",
        common.server.name(),
        a.docs,
        a.knobs.interval_ms,
        limit,
        common.repeat.max(1)
    );
    eprint!("{}", steps_table(&steps, a.docs));
    if knee.is_null() {
        eprintln!("  knee: none (no step passed)");
    } else {
        eprintln!(
            "  knee: {}{} clients/doc, {} deliveries/s, p99 {} ms",
            if lower { "at least " } else { "" },
            knee["clients"],
            num(&knee["deliveries_per_s"], 0),
            num(&knee["latency_p99_ms"], 2)
        );
    }
    eprintln!("  stopped: {stopped}");

    let mut out = Map::new();
    out.insert("steps".into(), Value::Array(steps));
    out.insert("knee".into(), knee);
    out.insert("stopped_because".into(), json!(stopped));
    out.insert("generator_bound".into(), json!(generator_bound));
    Ok((out, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(valid: bool, passed: bool, p99: Option<f64>, runs: usize) -> Value {
        json!({
            "valid": valid,
            "passed": passed,
            "problems": if passed && valid { json!([]) } else { json!(["delivery ratio 0.99"]) },
            "warnings": [],
            "median": if valid {
                json!({"latency_p99_ms": p99, "deliveries_per_s": 9000.0,
                       "latency_p50_ms": 1.0, "delivery_ratio": 1.0, "rooms_converged": 4})
            } else { Value::Null },
            "runs": vec![json!({}); runs],
        })
    }

    #[test]
    fn a_step_passes_only_valid_correct_and_within_the_limit() {
        assert_eq!(
            judge(&summary(true, true, Some(12.0), 1), 50.0),
            Verdict::Pass
        );
        assert_eq!(
            judge(&summary(true, true, Some(50.0), 1), 50.0),
            Verdict::Pass
        );
        assert_eq!(
            judge(&summary(true, true, Some(50.5), 1), 50.0),
            Verdict::OverLimit { p99_ms: 50.5 }
        );
        // Checks failed: fails even with a low p99.
        assert!(matches!(
            judge(&summary(true, false, Some(3.0), 1), 50.0),
            Verdict::Failed(p) if p.contains("delivery ratio")
        ));
        // Runs completed but invalid: the generator was saturated.
        assert_eq!(
            judge(&summary(false, true, None, 3), 50.0),
            Verdict::GeneratorBound
        );
        assert_eq!(
            judge(&summary(false, false, None, 1), 50.0),
            Verdict::GeneratorBound
        );
        // No run completed (the server did not start): a failure.
        assert!(matches!(
            judge(&summary(false, false, None, 0), 50.0),
            Verdict::Failed(_)
        ));
        // Valid and passed but no p99: a failure, not a pass.
        assert!(matches!(
            judge(&summary(true, true, None, 1), 50.0),
            Verdict::Failed(_)
        ));
    }

    #[test]
    fn step_figures_come_from_the_medians() {
        let v = Verdict::OverLimit { p99_ms: 70.0 };
        let s = step_json(30, &summary(true, true, Some(70.0), 1), &v, 50.0);
        assert_eq!(s["clients"], json!(30));
        assert_eq!(s["deliveries_per_s"], json!(9000.0));
        assert_eq!(s["rooms_converged"], json!(4));
        assert_eq!(s["valid"], json!(true));
        assert_eq!(s["checks_passed"], json!(true));
        assert_eq!(s["passed"], json!(false));
        assert_eq!(s["result"], json!("p99 > limit"));
        assert_eq!(s["why"], json!("latency p99 70.0 ms > 50 ms"));
        // A saturated generator: no figures.
        let s = step_json(
            40,
            &summary(false, true, None, 1),
            &Verdict::GeneratorBound,
            50.0,
        );
        assert!(s["deliveries_per_s"].is_null());
        assert!(s["latency_p99_ms"].is_null());
        assert_eq!(s["valid"], json!(false));
    }

    fn step(clients: usize, passed: bool, dps: f64) -> Value {
        json!({"clients": clients, "passed": passed, "deliveries_per_s": dps,
               "latency_p99_ms": 10.0})
    }

    #[test]
    fn the_knee_is_the_highest_passing_step() {
        let steps = [
            step(10, true, 900.0),
            step(20, true, 3800.0),
            step(30, false, 8000.0),
        ];
        assert_eq!(
            knee(&steps),
            json!({"clients": 20, "deliveries_per_s": 3800.0, "latency_p99_ms": 10.0})
        );
        assert!(knee(&steps[2..]).is_null());
        assert!(knee(&[]).is_null());
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(stopped_because(&[], 50.0), "no step ran");
        let all = [(10, Verdict::Pass), (20, Verdict::Pass)];
        assert!(stopped_because(&all, 50.0).starts_with("every step passed, up to 20"));
        let over = [
            (10, Verdict::Pass),
            (20, Verdict::OverLimit { p99_ms: 81.25 }),
        ];
        assert_eq!(
            stopped_because(&over, 50.0),
            "at 20 clients per document latency p99 was 81.2 ms > 50 ms"
        );
        let failed = [(10, Verdict::Failed("not converged".into()))];
        assert_eq!(
            stopped_because(&failed, 50.0),
            "at 10 clients per document the checks failed: not converged"
        );
        let bound = [(10, Verdict::Pass), (20, Verdict::GeneratorBound)];
        assert!(stopped_because(&bound, 50.0).contains("at least the last passing load"));
        let bound_first = [(10, Verdict::GeneratorBound)];
        assert!(stopped_because(&bound_first, 50.0).contains("before any step passed"));
    }

    #[test]
    fn lower_bounds_and_ratios() {
        let stopped = json!({"generator_bound": false,
                             "steps": [{"passed": true}, {"passed": false}]});
        assert!(!knee_is_lower_bound(&stopped));
        let all = json!({"generator_bound": false, "steps": [{"passed": true}]});
        assert!(knee_is_lower_bound(&all));
        let bound = json!({"generator_bound": true,
                           "steps": [{"passed": true}, {"passed": false}]});
        assert!(knee_is_lower_bound(&bound));

        assert_eq!(
            ratio_text(Some(30000.0), false, Some(10000.0), false),
            "3.00×"
        );
        assert_eq!(
            ratio_text(Some(30000.0), true, Some(10000.0), false),
            "≥ 3.00×"
        );
        assert_eq!(
            ratio_text(Some(5000.0), false, Some(10000.0), true),
            "≤ 0.50×"
        );
        assert_eq!(
            ratio_text(None, false, Some(10000.0), false),
            "no passing step"
        );
        assert_eq!(ratio_text(Some(1.0), false, None, false), "-");
        assert_eq!(
            ratio_text(Some(2.0), true, Some(1.0), true),
            "2.00× (both knees are lower bounds)"
        );
    }

    #[test]
    fn steps_must_ascend() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let mut all = vec!["coform-bench", "sustained"];
            all.extend(args);
            match crate::Cli::try_parse_from(all).unwrap().scenario {
                Scenario::Sustained(a) => a,
                _ => unreachable!(),
            }
        };
        let a = parse(&[]);
        assert_eq!(a.clients, vec![10, 20, 30, 40, 50, 60, 70, 80, 100, 120]);
        assert_eq!((a.docs, a.duration, a.p99_limit_ms), (10, 5.0, 50.0));
        assert_eq!(a.knobs.interval_ms, 100.0);
        assert!(check_args(&a).is_ok());
        let a = parse(&["--clients", "5,10", "--docs", "4", "--drain-timeout", "20"]);
        assert_eq!(a.clients, vec![5, 10]);
        assert_eq!(a.knobs.drain_timeout, 20.0);
        let step = a.step(10);
        assert_eq!((step.docs, step.clients, step.duration), (4, 10, 5.0));
        assert!(check_args(&parse(&["--clients", "20,10"])).is_err());
        assert!(check_args(&parse(&["--clients", "10,10"])).is_err());
        assert!(check_args(&parse(&["--clients", "1,10"])).is_err());
        assert!(check_args(&parse(&["--p99-limit-ms", "0"])).is_err());
    }
}
