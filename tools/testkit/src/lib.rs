//! A real local AWS for tests and the demo: `python3 -m moto.server` on a free loopback port.
//!
//! The server is stopped when the [`Moto`] value is dropped (also on a test panic), and the
//! kernel stops it if the process that started it dies first, so no server outlives its test.

pub mod fault_proxy;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

pub const REGION: &str = "us-east-1";
/// An AMI that moto ships, so RunInstances needs no set-up.
pub const AMI: &str = "ami-12c6146b";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server; stopped on drop.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// Start moto on 127.0.0.1 with a free port and wait until it accepts connections.
    ///
    /// The interpreter is `MOTO_PYTHON` if set (the scripts point it at their virtualenv),
    /// otherwise `python3`.
    pub fn start() -> io::Result<Self> {
        let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("ssm-session-owner-moto-{port}.log"));
        let mut command = Command::new(&python);
        command
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGTERM the child
        // when the thread that spawned it exits, so an aborted test cannot leak a server.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run {python} -m moto.server: {e} (scripts/test and scripts/demo install moto into .venv; or set MOTO_PYTHON to a Python that has it)"))
        })?;
        let mut moto = Moto { child, port, log };
        moto.wait_until_ready()?;
        Ok(moto)
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".into());
                return Err(io::Error::other(format!(
                    "moto exited with {status} before listening (is moto installed for {python}? scripts/test and scripts/demo install it into .venv): {log}"
                )));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "moto did not start within 60 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a child process (replay, a function) that should talk to this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Environment for a child process of the product (`replay`, `capacity`) against this moto,
    /// for the users' role `role`. moto has no SSM session APIs, so ending sessions on
    /// termination is off; logs are kept to errors.
    pub fn product_env(&self, role: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env();
        env.extend([
            ("SESSION_ROLE_NAME", role.to_owned()),
            // moto serves 38 regions; a single-region deployment keeps the per-event counts
            // readable. The multi-region tests set their own.
            ("REGIONS", REGION.to_owned()),
            ("END_SESSIONS_ON_TERMINATE", "false".to_owned()),
            ("RUST_LOG", "error".to_owned()),
        ]);
        env
    }

    /// The product's SDK configuration (same timeouts and retries), pointed at this moto.
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_at(&self.endpoint()).await
    }

    /// The same, pointed at `endpoint` (a fault proxy in front of this moto).
    pub async fn sdk_config_at(&self, endpoint: &str) -> SdkConfig {
        shared::aws::sdk_loader()
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

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
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
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
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let template = repository.join(template);
    let mut args = vec![mode.as_ref(), template.as_os_str()];
    args.extend(settings.iter().map(std::ffi::OsStr::new));
    project_script_json_lines("lint_policies.py", args)
}

/// Create the shipped end-user policy (without `EndOwnSessions` unless `static_rights`) and the
/// guard policy under the template's default names, attach both to `role` as the template does,
/// and return the end-user policy's ARN.
pub async fn attach_end_user_policy(
    iam: &aws_sdk_iam::Client,
    role: &str,
    static_rights: bool,
) -> String {
    let mut document = shipped_end_user_policy();
    if !static_rights {
        document["Statement"]
            .as_array_mut()
            .expect("a statement list")
            .retain(|s| s["Sid"] != "EndOwnSessions");
    }
    let arn = iam
        .create_policy()
        .policy_name(END_USER_POLICY)
        .path("/")
        .policy_document(document.to_string())
        .send()
        .await
        .expect("moto CreatePolicy")
        .policy()
        .and_then(|p| p.arn())
        .expect("an ARN in CreatePolicy's answer")
        .to_owned();
    let guards = iam
        .create_policy()
        .policy_name(GUARD_POLICY)
        .path("/")
        .policy_document(shipped_policy("GuardPolicy").to_string())
        .send()
        .await
        .expect("moto CreatePolicy")
        .policy()
        .and_then(|p| p.arn())
        .expect("an ARN in CreatePolicy's answer")
        .to_owned();
    for policy in [&arn, &guards] {
        iam.attach_role_policy()
            .role_name(role)
            .policy_arn(policy)
            .send()
            .await
            .expect("moto AttachRolePolicy");
    }
    arn
}

/// The template's default `EndUserPolicyName`.
pub const END_USER_POLICY: &str = "SsmSessionOwnerEndUser";
/// The template's default `GuardPolicyName`.
pub const GUARD_POLICY: &str = "SsmSessionOwnerGuards";

/// Create the users' role and return its id.
pub async fn create_role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"},
                       "Action": "sts:AssumeRoleWithSAML"}]
    });
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("moto CreateRole")
        .role()
        .expect("role in CreateRole answer")
        .role_id()
        .to_owned()
}

/// Create an IAM Identity Center role (`AWSReservedSSO_<set>_<suffix>` under
/// `/aws-reserved/sso.amazonaws.com/`, trusting the Identity Center SAML provider) and return its
/// id.
pub async fn create_sso_role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/AWSSSO_0123_DO_NOT_DELETE"},
        "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"]}]});
    iam.create_role()
        .role_name(name)
        .path("/aws-reserved/sso.amazonaws.com/")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("moto CreateRole")
        .role()
        .expect("a role in CreateRole's answer")
        .role_id()
        .to_owned()
}

/// Let the whole account assume `role` with `sts:AssumeRole` (statement `Ci`) beside its SAML
/// trust, with no condition on the session name: what a trust-policy check must find.
pub async fn trust_the_account_to_assume(iam: &aws_sdk_iam::Client, role: &str) {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"}, "Action": "sts:AssumeRoleWithSAML"},
        {"Sid": "Ci", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
    iam.update_assume_role_policy()
        .role_name(role)
        .policy_document(trust.to_string())
        .send()
        .await
        .expect("moto UpdateAssumeRolePolicy");
}

/// Launch `count` instances with `tags` and return their ids.
pub async fn run_instances(
    ec2: &aws_sdk_ec2::Client,
    count: i32,
    tags: &[(&str, &str)],
) -> Vec<String> {
    let mut request = ec2
        .run_instances()
        .image_id(AMI)
        .min_count(count)
        .max_count(count);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (key, value) in tags {
            spec = spec.tags(Tag::builder().key(*key).value(*value).build());
        }
        request = request.tag_specifications(spec.build());
    }
    request
        .send()
        .await
        .expect("moto RunInstances")
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// The ids of the volumes attached to an instance (moto gives every instance a root volume).
pub async fn volumes_of(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> Vec<String> {
    use aws_sdk_ec2::types::Filter;
    ec2.describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(instance_id)
                .build(),
        )
        .send()
        .await
        .expect("moto DescribeVolumes")
        .volumes()
        .iter()
        .filter_map(|v| v.volume_id().map(str::to_owned))
        .collect()
}

/// A new volume with `tags`, attached to `instance_id` when one is given.
pub async fn create_volume(
    ec2: &aws_sdk_ec2::Client,
    instance_id: Option<&str>,
    tags: &[(&str, &str)],
) -> String {
    let mut request = ec2.create_volume().availability_zone("us-east-1a").size(8);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Volume);
        for (key, value) in tags {
            spec = spec.tags(Tag::builder().key(*key).value(*value).build());
        }
        request = request.tag_specifications(spec.build());
    }
    let volume_id = request
        .send()
        .await
        .expect("moto CreateVolume")
        .volume_id()
        .expect("a volume id")
        .to_owned();
    if let Some(instance_id) = instance_id {
        ec2.attach_volume()
            .volume_id(&volume_id)
            .instance_id(instance_id)
            .device("/dev/sdf")
            .send()
            .await
            .expect("moto AttachVolume");
    }
    volume_id
}

/// The tags EC2 holds for one resource. DescribeTags, unlike DescribeInstances, also answers for
/// ids moto has no instance for, so "nothing was written" can be checked for any id.
pub async fn tags_of(ec2: &aws_sdk_ec2::Client, resource_id: &str) -> BTreeMap<String, String> {
    use aws_sdk_ec2::types::Filter;
    ec2.describe_tags()
        .filters(
            Filter::builder()
                .name("resource-id")
                .values(resource_id)
                .build(),
        )
        .send()
        .await
        .expect("moto DescribeTags")
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A sample event with its placeholder ids replaced by the ones moto made.
pub fn rewrite(template: &str, replacements: &[(&str, &str)]) -> serde_json::Value {
    let mut text = template.to_owned();
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).expect("sample event is JSON")
}

/// The users' role in the samples and the demo.
pub const DEMO_ROLE: &str = "Okta-ServiceWorkbenchUser";
/// The placeholder role id in `events/`.
pub const SAMPLE_ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

/// The policy-name prefix the samples and the demo use (the product's default).
pub const DEMO_POLICY_PREFIX: &str = "ssm-session-owner-";

/// Make moto match `events/`: create the users' role and launch, for every sample instance id,
/// an instance tagged as the portal would have. grace.hopper's only instance
/// (`i-0a1b2c3d4e5f60006`, the termination sample) is already tagged and terminated, and her
/// statement from before is still on the role. Returns the role id and the replacements
/// (sample id → moto id) that turn a sample event into one about these instances.
pub async fn seed_samples(
    admin_ec2: &aws_sdk_ec2::Client,
    admin_iam: &aws_sdk_iam::Client,
) -> (String, Vec<(String, String)>) {
    let role_id = create_role(admin_iam, DEMO_ROLE).await;
    let mut replacements = vec![(SAMPLE_ROLE_ID.to_owned(), role_id.clone())];
    let launches: &[(&str, &[(&str, &str)])] = &[
        // run-instances-created-by.json: two portal instances for tim.malone
        (
            "i-0a1b2c3d4e5f60001",
            &[("CreatedBy", "tim.malone"), ("Name", "workspace-tim")],
        ),
        (
            "i-0a1b2c3d4e5f60002",
            &[("CreatedBy", "tim.malone"), ("Name", "workspace-tim")],
        ),
        // run-instances-owner-not-in-event.json: the portal tagged after launch
        ("i-0a1b2c3d4e5f60003", &[("CreatedBy", "ada.lovelace")]),
        // run-instances-users-role-session.json: tim.malone launched it himself
        ("i-0a1b2c3d4e5f60004", &[("Name", "scratch")]),
        // run-instances-hostile-username.json
        ("i-0a1b2c3d4e5f60005", &[("CreatedBy", "tim*")]),
        // tag-change-created-by-added.json: a fleet launch no RunInstances event reported,
        // whose CreatedBy came later
        (
            "i-0a1b2c3d4e5f60007",
            &[("CreatedBy", "ada.lovelace"), ("Name", "fleet-worker")],
        ),
    ];
    for (sample_id, tags) in launches {
        let ids = run_instances(admin_ec2, 1, tags).await;
        replacements.push((sample_id.to_string(), ids[0].clone()));
    }
    let grace_value = format!("{role_id}:grace.hopper");
    let grace = run_instances(
        admin_ec2,
        1,
        &[("CreatedBy", "grace.hopper"), ("AwsUserId", &grace_value)],
    )
    .await
    .remove(0);
    admin_ec2
        .terminate_instances()
        .instance_ids(&grace)
        .send()
        .await
        .expect("moto TerminateInstances");
    let grace_user =
        shared::domain::session_name::SessionName::parse("grace.hopper").expect("valid name");
    admin_iam
        .put_role_policy()
        .role_name(DEMO_ROLE)
        .policy_name(shared::domain::statements::inline_policy_name(
            DEMO_POLICY_PREFIX,
            &grace_user,
        ))
        .policy_document(shared::domain::statements::inline_document(
            &role_id_of(&role_id),
            &grace_user,
        ))
        .send()
        .await
        .expect("moto PutRolePolicy");
    replacements.push(("i-0a1b2c3d4e5f60006".into(), grace));
    (role_id, replacements)
}

/// Every sample in `events/`, rewritten with `replacements` into `dir`; returns the paths.
pub fn write_samples(
    dir: &std::path::Path,
    replacements: &[(String, String)],
) -> io::Result<Vec<PathBuf>> {
    let pairs: Vec<(&str, &str)> = replacements
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut paths = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(shared::fixtures::events_dir())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for source in entries {
        let text = std::fs::read_to_string(&source)?;
        let target = dir.join(source.file_name().unwrap_or_default());
        std::fs::write(&target, rewrite(&text, &pairs).to_string())?;
        paths.push(target);
    }
    Ok(paths)
}

/// The users' role's inline policy names.
pub async fn role_policy_names(iam: &aws_sdk_iam::Client, role: &str) -> Vec<String> {
    iam.list_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("moto ListRolePolicies")
        .policy_names()
        .to_vec()
}

/// Who the users' role grants session rights to: username → the policy holding the statement
/// (`inline <name>` or `shard <name>`), read back from IAM.
/// The `aws:userid` values of a statement's condition: one (an inline statement) or a list (a
/// shard in the dense encoding).
pub fn user_ids(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(many) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

pub async fn granted_users(iam: &aws_sdk_iam::Client, role: &str) -> BTreeMap<String, String> {
    let mut granted = BTreeMap::new();
    let mut record = |document: &str, holder: String| {
        let parsed: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
        for statement in parsed["Statement"].as_array().into_iter().flatten() {
            for id in user_ids(&statement["Condition"]["StringEquals"]["aws:userid"]) {
                if let Some((_, user)) = id.split_once(':') {
                    granted.insert(user.to_owned(), holder.clone());
                }
            }
        }
    };
    for name in role_policy_names(iam, role).await {
        let output = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(&name)
            .send()
            .await
            .expect("moto GetRolePolicy");
        record(
            &shared::aws::decode_policy_document(output.policy_document()),
            format!("inline {name}"),
        );
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("moto ListAttachedRolePolicies");
    for policy in attached.attached_policies() {
        let arn = policy.policy_arn().unwrap_or_default();
        let meta = iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .expect("moto GetPolicy");
        let version = meta
            .policy()
            .and_then(|p| p.default_version_id())
            .unwrap_or("v1");
        let doc = iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .expect("moto GetPolicyVersion");
        let document = doc
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default();
        record(
            &shared::aws::decode_policy_document(document),
            format!("shard {}", policy.policy_name().unwrap_or_default()),
        );
    }
    granted
}

/// moto with the users' role, one client set for the code under test (every request it sends
/// is counted) and one for the test to seed and read back moto (not counted).
pub struct CountedMoto {
    pub moto: Moto,
    pub clients: shared::aws::Clients,
    pub counter: shared::aws::CallCounter,
    pub admin: shared::aws::Clients,
    pub role_name: String,
    pub role_id: shared::domain::ids::RoleId,
}

impl CountedMoto {
    pub async fn start(role: &str) -> Self {
        let moto = Moto::start().expect("moto starts");
        let sdk = moto.sdk_config().await;
        let counter = shared::aws::CallCounter::default();
        let clients = shared::aws::Clients::with_counter(&sdk, Some(counter.clone()));
        let admin = shared::aws::Clients::new(&sdk);
        let role_id = role_id_of(&create_role(&admin.iam, role).await);
        Self {
            moto,
            clients,
            counter,
            admin,
            role_name: role.to_owned(),
            role_id,
        }
    }

    /// The users' role as the stores take it.
    pub fn role(&self) -> shared::domain::ids::ResolvedRole {
        shared::domain::ids::ResolvedRole {
            name: self.role_name.clone(),
            id: self.role_id.clone(),
        }
    }

    /// An instance as the owner-tagger leaves it: `CreatedBy` and `AwsUserId` for `name`.
    pub async fn launch_for(&self, name: &str) -> String {
        let value = format!("{}:{name}", self.role_id);
        run_instances(
            &self.admin.ec2,
            1,
            &[("CreatedBy", name), ("AwsUserId", &value)],
        )
        .await
        .remove(0)
    }
}

impl CountedMoto {
    /// Configuration for the session-policy function against this moto. moto has no SSM
    /// session APIs, so ending sessions on termination is off.
    pub fn session_config(&self, role: &str) -> shared::Config {
        shared::Config::from_lookup(|k| match k {
            "SESSION_ROLE_NAME" => Some(role.into()),
            "SESSION_ROLE_ID" => Some(self.role_id.to_string()),
            "END_SESSIONS_ON_TERMINATE" => Some("false".into()),
            "REGIONS" => Some(REGION.into()),
            _ => None,
        })
        .expect("valid test configuration")
    }
}

/// `replay`'s JSON lines, keyed by file name. An event that goes to two functions (a schedule:
/// the sweep, then the reconcile) has the owner-tagger's line under `<file>#owner-tagger` and
/// the session-policy function's under `<file>`.
pub fn replay_lines(stdout: &[u8]) -> BTreeMap<String, serde_json::Value> {
    let parsed: Vec<serde_json::Value> = String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let file = |v: &serde_json::Value| {
        v["file"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let mut lines = BTreeMap::new();
    for v in &parsed {
        let name = file(v);
        let shared_file = parsed.iter().filter(|o| file(o) == name).count() > 1;
        let key = if shared_file && v["function"] == "owner-tagger" {
            format!("{name}#owner-tagger")
        } else {
            name
        };
        lines.insert(key, v.clone());
    }
    lines
}

/// A binary built next to the running one (`replay` beside `demo` or `bench`).
pub fn sibling_binary(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build -p {name}`",
            path.display()
        ))
    }
}

/// A role id the test knows to be valid (moto's ids are).
pub fn role_id_of(id: &str) -> shared::domain::ids::RoleId {
    shared::domain::ids::RoleId::parse(id).expect("valid role id")
}

/// The users' role as the stores take it: its name and id.
pub fn resolved(name: &str, id: &str) -> shared::domain::ids::ResolvedRole {
    shared::domain::ids::ResolvedRole {
        name: name.to_owned(),
        id: role_id_of(id),
    }
}

/// A session name the test knows to be valid.
pub fn user(name: &str) -> shared::domain::session_name::SessionName {
    shared::domain::session_name::SessionName::parse(name).expect("valid test username")
}

/// A sample event from `events/`, as text.
pub fn sample_event(name: &str) -> String {
    let path = shared::fixtures::events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl CountedMoto {
    /// `events/tag-change-user-id-added.json` for this instance and user of the users' role.
    pub fn tag_event(&self, instance_id: &str, name: &str) -> serde_json::Value {
        let value = format!("{}:{name}", self.role_id);
        rewrite(
            &sample_event("tag-change-user-id-added.json"),
            &[
                ("i-0a1b2c3d4e5f60001", instance_id),
                ("AROAEXAMPLEROLEID1234:tim.malone", &value),
            ],
        )
    }

    /// `events/state-change-terminated.json` for this instance.
    pub fn terminated_event(&self, instance_id: &str) -> serde_json::Value {
        rewrite(
            &sample_event("state-change-terminated.json"),
            &[("i-0a1b2c3d4e5f60006", instance_id)],
        )
    }

    /// Terminate an instance in moto.
    pub async fn terminate(&self, instance_id: &str) {
        self.admin
            .ec2
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .expect("moto TerminateInstances");
    }
}

/// Create, in the region `ssm` talks to, the session documents `template.yaml` creates with
/// `settings` (as CloudFormation would), and return their names.
pub async fn create_session_documents(ssm: &aws_sdk_ssm::Client, settings: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for document in shipped_session_documents("template.yaml", settings) {
        let properties = &document["properties"];
        let name = properties["Name"]
            .as_str()
            .expect("a document name")
            .to_owned();
        ssm.create_document()
            .name(&name)
            .document_type(aws_sdk_ssm::types::DocumentType::Session)
            .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
            .content(properties["Content"].to_string())
            .send()
            .await
            .expect("moto CreateDocument");
        names.push(name);
    }
    names
}

/// What every tool must do with its arguments: `--help` and `--version` answer on stdout with
/// exit 0; an unknown option is a usage error, exit 2, with a hint and no panic.
pub fn assert_behaves_like_a_cli(binary: &str, name: &str) {
    let run = |args: &[&str]| {
        std::process::Command::new(binary)
            .args(args)
            .env_remove("FAILURE_QUEUE_URL")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"))
    };
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{name} --help: {text}");
    assert!(text.contains(&format!("Usage: {name}")), "{text}");
    assert!(
        text.contains("Exit status:"),
        "{name} --help documents its exit codes: {text}"
    );
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION"))
    );
    let bad = run(&["--no-such-option"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--no-such-option"), "{stderr}");
    assert!(stderr.contains("--help"), "a hint: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
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

/// Create, in moto's CloudFormation, a stack `name` shaped like the product's for the tools'
/// `--stack`: the two functions (both with `environment`, as the template's Globals give it)
/// and the failure queue, with the outputs `template.yaml` gives them. moto cannot create
/// `template.yaml` itself (it substitutes a `Fn::Sub` variable's value twice and encodes JSON
/// policy strings twice), so the stack holds only what `--stack` reads.
pub async fn create_product_stack(
    sdk: &aws_config::SdkConfig,
    name: &str,
    environment: &BTreeMap<String, String>,
) {
    let function = serde_json::json!({
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "provided.al2023", "Handler": "bootstrap", "Code": {"ZipFile": "stand-in"},
            "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
            "Environment": {"Variables": environment},
        },
    });
    let template = serde_json::json!({
        "Resources": {
            "FunctionRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}},
            "OwnerTaggerFunction": function,
            "SessionPolicyFunction": function,
            "FailureQueue": {"Type": "AWS::SQS::Queue"},
        },
        "Outputs": {
            "OwnerTaggerFunctionArn": {"Value": {"Fn::GetAtt": ["OwnerTaggerFunction", "Arn"]}},
            "SessionPolicyFunctionArn": {"Value": {"Fn::GetAtt": ["SessionPolicyFunction", "Arn"]}},
            "FailureQueueUrl": {"Value": {"Ref": "FailureQueue"}},
            "ForwarderDeadLettersName": {"Value": "ssm-session-owner-forward-dead-letters"},
        },
    });
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .capabilities(aws_sdk_cloudformation::types::Capability::CapabilityIam)
        .send()
        .await
        .expect("moto CreateStack");
}
