//! Case files: the YAML schema and its errors (`schema`), the matrix a case expands over
//! (`matrix`), validation and the plans a case expands to (`plan`), and the plans a run
//! selects (`select`). Nothing here runs anything.

mod matrix;
mod plan;
mod schema;
pub mod select;

pub use plan::*;
pub use schema::*;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use anyhow::Result;
    use std::path::Path;
    use std::time::Duration;

    fn err(text: &str) -> String {
        parse(Path::new("cases/x.yaml"), text)
            .unwrap_err()
            .to_string()
    }

    const GOOD: &str = "description: d\ndisks:\n  - {name: m0, size: 256MiB}\nsteps:\n  - run: echo hi\n  - run:\n      cmd: true\n      timeout: 5s\n  - wait_for: {cmd: 'test -e /dev/md0', timeout: 10s}\n";

    #[test]
    fn a_good_case_parses_both_run_forms() {
        let c = parse(Path::new("x.yaml"), GOOD).unwrap();
        assert_eq!(c.disks[0].size, Size(256 << 20));
        match (&c.steps[0], &c.steps[1]) {
            (Step::Run(a), Step::Run(b)) => {
                assert_eq!(
                    (a.cmd.as_str(), a.timeout),
                    ("echo hi", Duration::from_secs(60))
                );
                assert_eq!(
                    (b.cmd.as_str(), b.timeout),
                    ("true", Duration::from_secs(5))
                );
            }
            other => panic!("{other:?}"),
        }
        let p = plan(Path::new("cases/x.yaml"), c, Some(7)).unwrap();
        assert_eq!(
            (p.name.as_str(), p.seed, p.disks[0].device.as_str()),
            ("x", 7, "/dev/vda")
        );
    }

    #[test]
    fn an_unknown_key_names_file_line_column_and_field() {
        let e =
            err("description: d\ndisks: []\nsteps:\n  - run:\n      cmd: x\n      timout: 5s\n");
        assert!(
            e.starts_with("cases/x.yaml:6:7: steps[0].run: unknown field `timout`"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let e = err("description: d\ndisks:\n  - {name: a, size: 12XB}\nsteps: []\n");
        assert!(e.starts_with("cases/x.yaml:3:"), "{e}");
        assert!(
            e.contains("disks[0].size: size \"12XB\": unknown unit"),
            "{e}"
        );
        let e = err("description: d\ndisks: []\nsteps:\n  - sleep: 5\n");
        assert!(e.contains("steps[0]: unknown variant `sleep`"), "{e}");
        let e = err("description: d\nsteps: [\n");
        assert!(e.starts_with("cases/x.yaml:"), "{e}");
    }

    #[test]
    fn validation_rejects_what_parses_but_cannot_run() {
        let load = |t: &str| {
            plan(
                Path::new("c.yaml"),
                parse(Path::new("c.yaml"), t).unwrap(),
                Some(1),
            )
            .unwrap_err()
            .to_string()
        };
        assert!(load(
            "description: d\ndisks: [{name: a, size: 1M}, {name: a, size: 1M}]\nsteps: [run: x]\n"
        )
        .contains("appears twice"));
        assert!(
            load("description: d\ndisks: [{name: a-b, size: 1M}]\nsteps: [run: x]\n")
                .contains("letters, digits")
        );
        assert!(
            load("description: d\ndisks: []\nvm: {memory: 64M}\nsteps: [run: x]\n")
                .contains("at least 128 MiB")
        );
        assert!(load(
            "description: d\ndisks: []\nsteps: [{run: {cmd: x, expect_stdout: ['(']}}]\n"
        )
        .contains("expect_stdout"));
        let faults = |f: &str| {
            load(&format!("description: d\ndisks: [{{name: a, size: 64M}}, {{name: b, size: 64M}}, {{name: fs, size: 64M}}]\narray: {{level: 1, members: [a, b], bitmap: {{disk: fs, chunk: 64K}}}}\ncrash: {{after_time: 3s, faults: {f}}}\n"))
        };
        assert!(
            faults("{during: resync, failslab: {probability: 5, tasks: writers}}")
                .contains("no writers to fail")
        );
        assert!(faults("{fail_page_alloc: {probability: 101}}").contains("probability 0..=100"));
        assert!(faults("{fail_make_request: {disk: zz, probability: 1}}").contains("zz"));
        assert!(faults("{fail_make_request: {disk: a, probability: 101}}")
            .contains("fail_make_request: probability 0..=100"));
        let array = |bitmap: &str, scenario: &str| {
            load(&format!("description: d\ndisks: [{{name: a, size: 64M}}, {{name: b, size: 64M}}, {{name: fs, size: 64M}}]\narray: {{level: 1, members: [a, b], bitmap: {bitmap}}}\n{scenario}\n"))
        };
        let crash = "crash: {after_time: 3s}";
        // The three a new user found running to a verdict, and their kin.
        assert!(
            load("description: d\ndisks: []\nvm: {timeout: 0s}\nsteps: [run: x]\n")
                .contains("vm.timeout 0ns: 1 s to 24 h")
        );
        assert!(
            load("description: d\ndisks: []\nsteps: [{run: {cmd: x, timeout: 0s}}]\n")
                .contains("steps[0].run.timeout: 0 s")
        );
        assert!(array("{disk: fs, path: relative, chunk: 64K}", crash)
            .contains("array.bitmap.path \"relative\": an absolute path"));
        assert!(array("{disk: fs, path: '/a b', chunk: 64K}", crash).contains("array.bitmap.path"));
        assert!(array("{disk: fs, path: /../x, chunk: 64K}", crash).contains("array.bitmap.path"));
        assert!(array("{disk: fs, chunk: 1G}", crash)
            .contains("the smallest member (64 MiB) holds 0 chunks; at least 32"));
        assert!(array("{disk: fs, chunk: 4M}", crash).contains("holds 16 chunks"));
        assert!(array("{disk: fs, chunk: 64K}", "crash: {after_time: 0s}")
            .contains("crash.after_time 0ns"));
        assert!(array("{disk: fs, chunk: 64K}", "crash: {after_time: 20m}")
            .contains("less than vm.timeout"));
        assert!(array(
            "{disk: fs, chunk: 64K}",
            "crash: {after_time: 3s, throttle: {disk: b, iops_write: 0}}"
        )
        .contains("crash.throttle.iops_write: at least 1"));
        assert!(array(
            "{disk: fs, chunk: 64K}",
            "bitmap_eio: {crash: {after_time: 3s, workload: {writers: 0}}}"
        )
        .contains("bitmap_eio.crash.workload"));
        for sleep in ["0s", "1500ms", "11m"] {
            assert!(
                array(
                    &format!("{{disk: fs, chunk: 64K, daemon_sleep: {sleep}}}"),
                    crash
                )
                .contains("daemon_sleep"),
                "{sleep}"
            );
        }
        let lie = |l: &str| {
            array(
                "{disk: fs, chunk: 64K}",
                &format!("bitmap_lie: {{{l}expect: {{stale: full_recovery}}, crash: {{after_time: 3s, throttle: {{disk: b, iops_write: 50}}}}}}"),
            )
        };
        assert!(lie("").contains("bitmap_lie.lie: name the lie"));
        assert!(lie("lie: foreign, ").contains("bitmap_lie.expect: says nothing of \"foreign\""));
        assert!(array(
            "{kind: internal, chunk: 64K}",
            "bitmap_lie: {lie: stale, expect: {stale: full_recovery}, crash: {after_time: 3s, throttle: {disk: b, iops_write: 50}}}"
        )
        .contains("bitmap_lie: lies with a bitmap file"));
        let power = |p: &str| {
            array(
                "{disk: fs, chunk: 64K}",
                &format!("power_loss: {{model: volatile_cache, {p}}}"),
            )
        };
        assert!(power("load_for: 0s").contains("power_loss.load_for"));
        assert!(power("load_for: 10m").contains("at most a quarter of vm.timeout"));
        assert!(power("exact_up_to: 17").contains("power_loss.exact_up_to"));
        assert!(power("samples: 0").contains("power_loss.samples"));
        assert!(
            power("throttle: {disk: b, iops_write: 0}").contains("power_loss.throttle.iops_write")
        );
        assert!(power("throttle: {disk: nope, iops_write: 5}").contains("nope"));
    }

    const MATRIX: &str = "description: d\ndisks: [{name: a, size: 64M}, {name: b, size: 64M}, {name: c, size: 64M}, {name: d, size: 64M}, {name: fs, size: 64M}]\narray: {level: 1, members: [a, b, c, d], bitmap: {disk: fs, chunk: 64K}}\ncrash: {after_time: 3s}\n";

    fn expand_text(text: &str) -> Result<Vec<Plan>> {
        let file = Path::new("cases/m.yaml");
        expand(file, parse(file, text).unwrap(), Some(3))
    }

    #[test]
    fn a_matrix_expands_to_named_cases_minus_the_excluded() {
        let plans = expand_text(&format!(
            "{MATRIX}matrix:\n  level: [1, 6]\n  members: [2, 4]\n  bitmap: [file, internal]\n  chunk: [64K, 1M]\n  exclude:\n    - {{level: 6, members: 2}}\n    - {{level: 1, members: 4, chunk: 1M}}\n"
        ))
        .unwrap();
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "m@raid1-n2-file-64K",
                "m@raid1-n2-file-1M",
                "m@raid1-n2-internal-64K",
                "m@raid1-n2-internal-1M",
                "m@raid1-n4-file-64K",
                "m@raid1-n4-internal-64K",
                "m@raid6-n4-file-64K",
                "m@raid6-n4-file-1M",
                "m@raid6-n4-internal-64K",
                "m@raid6-n4-internal-1M",
            ]
        );
        let p = &plans[9];
        let a = p.array.as_ref().unwrap();
        assert_eq!(
            (a.level, a.members.len(), a.bitmap.kind),
            (6, 4, BitmapKind::Internal)
        );
        assert!(a.bitmap.disk.is_empty(), "an internal bitmap needs no disk");
        assert_eq!(a.bitmap.chunk, Size(1 << 20));
        assert!(plans.iter().all(|p| p.seed == 3));
    }

    #[test]
    fn an_invalid_combination_fails_the_load_and_is_named_with_its_reason() {
        let e = expand_text(&format!(
            "{MATRIX}matrix: {{level: [1, 6], members: [3]}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("RAID6 needs at least 4 members, the case gives 3"),
            "{e}"
        );
        assert!(e.contains("matrix combination raid6-n3"), "{e}");
        assert!(e.contains("matrix.exclude"), "{e}");
        let e = expand_text(&format!("{MATRIX}matrix: {{level: [0]}}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("judges RAID1, RAID10, RAID5 and RAID6"), "{e}");
        let e = expand_text(&format!(
            "{MATRIX}matrix: {{level: [1], exclude: [{{level: 1}}]}}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("every combination is excluded"), "{e}");
        let e = expand_text(&format!("{MATRIX}matrix: {{members: [6]}}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("matrix.members 6: array.members lists only 4")
                && e.contains("matrix combination n6"),
            "{e}"
        );
        // Without a matrix the same shapes are refused by the plain load.
        let e = expand_text(
            &MATRIX
                .replace("level: 1", "level: 5")
                .replace("[a, b, c, d]", "[a, b]"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("RAID5 needs at least 3 members"), "{e}");
        let e = expand_text(&MATRIX.replace(
            "bitmap: {disk: fs, chunk: 64K}}",
            "bitmap: {kind: internal, chunk: 64K}, build: true}",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("array.build"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("64K"), Ok(Size(65536)));
        assert_eq!(Size::parse("1GiB"), Ok(Size(1 << 30)));
        assert_eq!(Size::parse("4096"), Ok(Size(4096)));
        assert!(Size::parse("M").is_err());
        assert!(Size::parse("99999999999999999G")
            .unwrap_err()
            .contains("too large"));
    }

    const POWER: &str = "description: d\ndisks: [{name: a, size: 64M}, {name: b, size: 64M}, {name: fs, size: 64M}]\narray: {level: 1, members: [a, b], bitmap: {disk: fs, chunk: 64K}}\npower_loss: {model: volatile_cache}\n";

    /// The plans of a case file's text, or the load's whole error.
    fn load_plans(text: String) -> std::result::Result<Vec<Plan>, String> {
        let file = Path::new("cases/p.yaml");
        expand(file, parse(file, &text).unwrap(), Some(1)).map_err(|e| format!("{e:#}"))
    }

    /// A valid plan of a scenario, for tests elsewhere.
    pub(crate) fn plan_of(scenario: &str) -> Plan {
        let text = match scenario {
            "power-loss" => POWER.to_string(),
            other => panic!("no test plan of {other}"),
        };
        let file = Path::new("cases/p.yaml");
        plan(file, parse(file, &text).unwrap(), Some(1)).unwrap()
    }

    #[test]
    fn declared_findings_must_be_known_once_and_able_to_show_in_the_case() {
        let declare = |ids: &str| load_plans(format!("{POWER}findings: [{ids}]\n"));
        let p = declare("unplug-ordering, file-bitmap-no-fua").unwrap();
        assert_eq!(p[0].findings, ["unplug-ordering", "file-bitmap-no-fua"]);
        let e = declare("nope").unwrap_err();
        assert!(
            e.contains("findings[0] \"nope\" is no known finding (known: unplug-ordering"),
            "{e}"
        );
        let e = declare("unplug-ordering, unplug-ordering").unwrap_err();
        assert!(
            e.contains("findings[1] \"unplug-ordering\" appears twice"),
            "{e}"
        );
        let e = load_plans(
            POWER.replace("volatile_cache", "write_through") + "findings: [file-bitmap-no-fua]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("cannot show in this case: it needs disk model volatile_cache"),
            "{e}"
        );
        // A recorded SIGKILL shows the race, not what a lost cache does; a panic records
        // nothing.
        let p = load_plans(MATRIX.to_string() + "findings: [unplug-ordering]\n").unwrap();
        assert_eq!(p[0].findings, ["unplug-ordering"]);
        let e = load_plans(MATRIX.to_string() + "findings: [file-bitmap-no-fua]\n").unwrap_err();
        assert!(e.contains("a SIGKILL loses none"), "{e}");
        let e = load_plans(
            MATRIX.replace("{after_time: 3s}", "{after_time: 3s, mode: panic}")
                + "findings: [unplug-ordering]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("only power-loss cases and SIGKILL crashes"),
            "{e}"
        );
        // In a matrix a finding fits the combinations it can show in, and must fit one.
        let m = POWER.to_string() + "matrix: {bitmap: [file, internal]}\n";
        let p =
            load_plans(m.clone() + "findings: [unplug-ordering, file-bitmap-no-fua]\n").unwrap();
        assert_eq!(p[0].findings, ["unplug-ordering", "file-bitmap-no-fua"]);
        assert_eq!(p[1].findings, ["unplug-ordering"]);
        let e = load_plans(
            m.replace("[file, internal]", "[internal]") + "findings: [file-bitmap-no-fua]\n",
        )
        .unwrap_err();
        assert!(
            e.contains("cannot show in any combination of the matrix"),
            "{e}"
        );
    }

    #[test]
    fn a_disk_in_two_places_of_the_array_is_refused_at_load_plans() {
        let e = load_plans(POWER.replace("members: [a, b]", "members: [a, a]")).unwrap_err();
        assert!(e.contains("array.members[1] \"a\" appears twice"), "{e}");
        let e = load_plans(POWER.replace("members: [a, b]", "members: [a, fs]")).unwrap_err();
        assert!(e.contains("the bitmap file cannot live on a member"), "{e}");
        let e = load_plans(POWER.replace(
            "{model: volatile_cache}",
            "{model: volatile_cache, throttle: {disk: fs, iops_write: 5}}",
        ))
        .unwrap_err();
        assert!(
            e.contains("power_loss.throttle.disk \"fs\" is not a member"),
            "{e}"
        );
        let e = load_plans(MATRIX.replace(
            "crash: {after_time: 3s}",
            "crash: {after_time: 3s, throttle: {disk: fs, iops_write: 5}}",
        ))
        .unwrap_err();
        assert!(
            e.contains("crash.throttle.disk \"fs\" is not a member"),
            "{e}"
        );
    }
}
