//! The shipped templates as the project's renderer reads them, and the project's scripts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The end-user policy as the template ships it, resolved by `scripts/lint_policies.py --dump`
/// (in the test virtualenv), with the static-mode statement `EndOwnSessions` included.
pub fn shipped_end_user_policy() -> serde_json::Value {
    shipped_policy("EndUserPolicy")
}

/// A policy resource of `template.yaml`, resolved by `scripts/lint_policies.py --dump` (in the
/// test virtualenv) with the template's default parameters (and `SessionRights=static`) and
/// account 123456789012.
pub fn shipped_policy(resource: &str) -> serde_json::Value {
    shipped_policy_with(resource, &[])
}

/// A policy resource of `template.yaml` with `settings` over the default parameters:
/// `NAME=VALUE` pairs, or `["every-option-on"]` for the largest end-user policy.
pub fn shipped_policy_with(resource: &str, settings: &[&str]) -> serde_json::Value {
    shipped_policy_of("template.yaml", resource, settings)
}

/// The policies the template attaches to the users' role with `settings` (`NAME=VALUE` pairs, or
/// `["every-option-on"]`): the end-user policy, then the guard policy and the sharing policy
/// where those settings create them.
pub fn shipped_users_policies(settings: &[&str]) -> Vec<serde_json::Value> {
    let found = dump("--dump", "template.yaml", settings);
    [
        "EndUserPolicy",
        "GuardPolicy",
        "SharingPolicy",
        "HybridNodesPolicy",
    ]
    .iter()
    .filter_map(|resource| {
        let name = format!("template.yaml {resource}");
        found
            .iter()
            .find(|p| p["name"] == name.as_str())
            .map(|p| p["document"].clone())
    })
    .collect()
}

/// A policy resource of `template` (`template.yaml` or `forwarder.yaml`) with `settings` over
/// the default parameters (a forwarder's policies exist only with a `HomeRegion=` elsewhere).
pub fn shipped_policy_of(template: &str, resource: &str, settings: &[&str]) -> serde_json::Value {
    let name = format!("{template} {resource}");
    dump("--dump", template, settings)
        .into_iter()
        .find(|p| p["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{template} ships no {resource} with {settings:?}"))["document"]
        .clone()
}

/// The session documents `template` (`template.yaml` or `forwarder.yaml`) creates with
/// `settings`, resolved: `{"name": logical id, "properties": ...}` each.
pub fn shipped_session_documents(template: &str, settings: &[&str]) -> Vec<serde_json::Value> {
    dump("--dump-documents", template, settings)
}

/// Run one of the project's Python scripts (`scripts/<script>`) with the test virtualenv's
/// interpreter, from the repository's root.
pub fn project_script<I, S>(script: &str, args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = repository.join(".venv/bin/python");
    Command::new(&python)
        .arg(repository.join("scripts").join(script))
        .args(args)
        .current_dir(&repository)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/test)", python.display()))
}

/// What a project script that prints one JSON object per line printed, once it succeeded.
pub fn project_script_json_lines<I, S>(script: &str, args: I) -> Vec<serde_json::Value>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let output = project_script(script, args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object per line"))
        .collect()
}

fn dump(mode: &str, template: &str, settings: &[&str]) -> Vec<serde_json::Value> {
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let template = repository.join(template);
    let mut args = vec![mode.as_ref(), template.as_os_str()];
    args.extend(settings.iter().map(std::ffi::OsStr::new));
    project_script_json_lines("lint_policies.py", args)
}

/// A sample event with its placeholder ids replaced by the ones moto made.
pub fn rewrite(template: &str, replacements: &[(&str, &str)]) -> serde_json::Value {
    let mut text = template.to_owned();
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).expect("sample event is JSON")
}

/// The session-policy function's environment as `template.yaml` renders it for one of
/// `scripts/rehearse.py`'s parameter sets (cloud-radar, on the SAM translation), values as
/// strings: what `--stack` reads from a deployed function.
pub fn deployed_environment(set: &str) -> BTreeMap<String, String> {
    let output = project_script("rehearse.py", ["--environment", set]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let variables: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("a JSON object of variables");
    variables
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (key, text)
        })
        .collect()
}
