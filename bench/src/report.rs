//! `coform-bench report FILE`: side-by-side tables from the JSON lines of
//! earlier runs (one column per server, one table per scenario and
//! parameters).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::sustained::{knee_is_lower_bound, ratio_text};
use crate::{fmt_num, table_fields};

pub fn print(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Group by scenario and parameters, keeping the order of first sight.
    let mut groups: Vec<(String, Vec<&Value>)> = Vec::new();
    for v in &lines {
        let key = format!("{} {}", v["scenario"].as_str().unwrap_or("?"), v["params"]);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(v),
            None => groups.push((key, vec![v])),
        }
    }
    for (key, group) in groups {
        let scenario = group[0]["scenario"].as_str().unwrap_or("?");
        if scenario == "sustained" {
            print_sustained(&key, &group);
            continue;
        }
        if scenario == "presence" && group[0]["steps"].is_array() {
            print_presence_steps(&key, &group);
            continue;
        }
        let mut columns: Vec<(String, &Value, bool)> = Vec::new();
        for v in &group {
            if scenario == "durability-cost" {
                if let Some(configs) = v["configs"].as_object() {
                    for (name, c) in configs {
                        let ok =
                            c["valid"] == Value::Bool(true) && c["passed"] == Value::Bool(true);
                        columns.push((name.clone(), &c["median"], ok));
                    }
                }
            } else {
                let mut name = v["server"].as_str().unwrap_or("?").to_string();
                if let Some(args) = v["server_args"].as_array().filter(|a| !a.is_empty()) {
                    let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
                    name = format!("{name} {}", args.join(" "));
                }
                let ok = v["valid"] == Value::Bool(true) && v["passed"] == Value::Bool(true);
                columns.push((name, &v["median"], ok));
            }
        }
        let repeat = group[0]["repeat"].as_u64().unwrap_or(1);
        println!("\n## {key} (medians of {repeat})");
        let mut header = format!("| {:<26} |", "metric");
        let mut rule = format!("|{:-<28}|", "");
        for (name, _, _) in &columns {
            header.push_str(&format!(" {name:>14} |"));
            rule.push_str(&format!("{:-<16}|", ""));
        }
        println!("{header}\n{rule}");
        let mut status = format!("| {:<26} |", "checks");
        for (_, median, ok) in &columns {
            let s = if median.is_null() {
                "INVALID"
            } else if median.get("skipped").is_some() {
                "skipped"
            } else if *ok {
                "ok"
            } else {
                "FAILED"
            };
            status.push_str(&format!(" {s:>14} |"));
        }
        println!("{status}");
        for f in table_fields(scenario) {
            let mut line = format!("| {f:<26} |");
            for (_, median, _) in &columns {
                line.push_str(&format!(" {:>14} |", fmt_num(&median[f])));
            }
            println!("{line}");
        }
    }
    Ok(())
}

fn server_name(v: &Value) -> String {
    let mut name = v["server"].as_str().unwrap_or("?").to_string();
    if let Some(args) = v["server_args"].as_array().filter(|a| !a.is_empty()) {
        let args: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
        name = format!("{name} {}", args.join(" "));
    }
    name
}

/// The sustained-load knees side by side: one column per result line.
fn print_sustained(key: &str, group: &[&Value]) {
    let repeat = group[0]["repeat"].as_u64().unwrap_or(1);
    println!("\n## {key} (medians of {repeat})");
    let names: Vec<String> = group.iter().map(|v| server_name(v)).collect();
    let mut header = format!("| {:<26} |", "metric");
    let mut rule = format!("|{:-<28}|", "");
    for name in &names {
        header.push_str(&format!(" {name:>15} |"));
        rule.push_str(&format!("{:-<17}|", ""));
    }
    println!("{header}\n{rule}");
    // The step that stopped the run, unless every step passed.
    let failing = |v: &Value| -> Value {
        v["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["passed"] != Value::Bool(true)))
            .cloned()
            .unwrap_or(Value::Null)
    };
    type Cell = fn(&Value, &Value) -> String;
    let rows: [(&str, Cell); 7] = [
        ("knee deliveries_per_s", |v, _| {
            let bound = if knee_is_lower_bound(v) && !v["knee"].is_null() {
                "≥ "
            } else {
                ""
            };
            format!("{bound}{}", fmt_num(&v["knee"]["deliveries_per_s"]))
        }),
        ("knee clients/doc", |v, _| fmt_num(&v["knee"]["clients"])),
        ("knee latency_p99_ms", |v, _| {
            fmt_num(&v["knee"]["latency_p99_ms"])
        }),
        ("first failing clients/doc", |_, f| fmt_num(&f["clients"])),
        ("first failing p99_ms", |_, f| fmt_num(&f["latency_p99_ms"])),
        ("first failing why", |_, f| {
            f["result"].as_str().unwrap_or("-").to_string()
        }),
        ("generator_bound", |v, _| fmt_num(&v["generator_bound"])),
    ];
    for (label, cell) in rows {
        let mut line = format!("| {label:<26} |");
        for v in group {
            line.push_str(&format!(" {:>15} |", cell(v, &failing(v))));
        }
        println!("{line}");
    }
    let knee = |v: &Value| v["knee"]["deliveries_per_s"].as_f64();
    if let Some(base) = group.iter().find(|v| v["server"] == "hocuspocus") {
        let parts: Vec<String> = group
            .iter()
            .zip(&names)
            .filter(|(v, _)| !std::ptr::eq(**v, *base))
            .map(|(v, name)| {
                let r = ratio_text(
                    knee(v),
                    knee_is_lower_bound(v),
                    knee(base),
                    knee_is_lower_bound(base),
                );
                format!("{name} {r}")
            })
            .collect();
        if knee(base).is_none() {
            println!("\nknee vs hocuspocus: hocuspocus has no passing step");
        } else if !parts.is_empty() {
            println!("\nknee vs hocuspocus (deliveries/s): {}", parts.join(", "));
        }
    }
    println!();
    for (v, name) in group.iter().zip(&names) {
        println!(
            "- {name}: stopped: {}",
            v["stopped_because"].as_str().unwrap_or("?")
        );
    }
}

/// Stepped presence runs: each server's steps and its highest step with
/// latency p99 within the limit.
fn print_presence_steps(key: &str, group: &[&Value]) {
    let repeat = group[0]["repeat"].as_u64().unwrap_or(1);
    println!("\n## {key} (medians of {repeat})");
    for v in group {
        let steps = v["steps"].as_array().cloned().unwrap_or_default();
        let best = &v["highest_passing"];
        println!("\n{}:\n```", server_name(v));
        print!("{}", crate::presence::steps_table(&steps));
        println!("```");
        if best.is_null() {
            println!("- highest step within the limit: none");
        } else {
            println!(
                "- highest step within the limit: {} clients/doc at {} Hz, p99 {} ms",
                best["clients"],
                best["hz"],
                fmt_num(&best["latency_p99_ms"])
            );
        }
        println!(
            "- stopped: {}",
            v["stopped_because"].as_str().unwrap_or("?")
        );
    }
}
