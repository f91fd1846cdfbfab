// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `connect`: for users of ssm-session-owner, with their own credentials and AWS CLI profile.
//! List the instances you own and those shared with you; open a shell, forward a port, ssh, scp
//! or sftp over Session Manager with the right document; share your instance and end the share.

mod aws;
mod reach;
mod run;

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::domain::ids::{InstanceId, ManagedNodeId, RoleId, UserId};
use shared::domain::session_name::SessionName;
use shared::domain::sharing::read_request;

use crate::aws::{Aws, Caller, Found};
use shared::domain::sharing::ShareRules;

use crate::reach::{reach, rules, table, why_not, Reach, Row};
use crate::run::{program, spawn, ssh_options, Cli, Documents};

const AFTER_HELP: &str = "\
Uses your own AWS credentials: your profile (--profile or AWS_PROFILE) from `aws configure sso`
or your SAML tool. Sessions need the AWS CLI and the Session Manager plugin on PATH; ssh, scp
and sftp need OpenSSH. Your operator tells you the deployment's tag keys and document names if
they are not the defaults; set them once in the CONNECT_* variables.

Examples:
  connect ls
  connect shell i-0123456789abcdef0
  connect forward i-0123456789abcdef0 8888          # Jupyter on http://localhost:8888
  connect ssh i-0123456789abcdef0 --os-user ubuntu
  connect scp i-0123456789abcdef0 -- results.csv i-0123456789abcdef0:/home/ec2-user/
  connect share i-0123456789abcdef0 ada.lovelace grace.hopper --for 3h

Exit status: 0 done; 1 refused (not your instance, not running), an AWS error, or the session
command's own failure (its exit status); 2 usage, no credentials, or a missing program.";

/// Reach the instances you launched, and those shared with you, over Session Manager.
#[derive(Parser, Debug)]
#[command(name = "connect", version, after_help = AFTER_HELP)]
struct Args {
    /// The AWS CLI profile to use (default: AWS_PROFILE, then the default profile).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// One region only (default: `ls` looks in every region enabled for the account, the other
    /// commands find the instance there).
    #[arg(long, global = true)]
    region: Option<String>,
    /// The deployment's user-id tag key.
    #[arg(
        long,
        global = true,
        env = "CONNECT_USER_ID_TAG_KEY",
        default_value = "AwsUserId"
    )]
    user_id_tag_key: String,
    /// The deployment's share request keys.
    #[arg(
        long,
        global = true,
        env = "CONNECT_SHARE_WITH_TAG_KEY",
        default_value = "ShareWith"
    )]
    share_with_tag_key: String,
    #[arg(
        long,
        global = true,
        env = "CONNECT_SHARE_FOR_TAG_KEY",
        default_value = "ShareFor"
    )]
    share_for_tag_key: String,
    /// The deployment's session documents: the prefix of its port-forwarding and SSH documents,
    /// and the shell document (`<prefix>Shell` when the operator chose ShellSessions=product).
    #[arg(
        long,
        global = true,
        env = "CONNECT_DOCUMENT_PREFIX",
        default_value = "SsmSessionOwner-"
    )]
    document_prefix: String,
    #[arg(
        long,
        global = true,
        env = "CONNECT_SHELL_DOCUMENT",
        default_value = "SSM-SessionManagerRunShell"
    )]
    shell_document: String,
    /// The deployment owns managed nodes outside EC2 (`HybridNodes=true`): `ls` lists yours too,
    /// and `shell` and `forward` take a node id (`mi-…`).
    #[arg(long, global = true, env = "CONNECT_HYBRID_NODES")]
    hybrid_nodes: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the instances you own and those shared with you (and until when).
    Ls {
        /// One JSON object: {"user_id": ..., "instances": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// A shell on the instance.
    Shell { instance: String },
    /// Forward a port of the instance (8888 Jupyter, 8787 RStudio, 3389 RDP) to this machine.
    Forward {
        instance: String,
        port: u16,
        /// The local port (default: the same).
        local: Option<u16>,
    },
    /// ssh to the instance, with a one-use key pushed just before ssh connects.
    Ssh {
        instance: String,
        #[arg(long, env = "CONNECT_OS_USER", default_value = "ec2-user")]
        os_user: String,
        /// Passed to ssh after the instance (options, a command).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// scp to or from the instance: name it as INSTANCE:path in the arguments after `--`.
    Scp {
        instance: String,
        #[arg(long, env = "CONNECT_OS_USER", default_value = "ec2-user")]
        os_user: String,
        #[arg(last = true, required = true)]
        args: Vec<String>,
    },
    /// sftp to the instance.
    Sftp {
        instance: String,
        #[arg(long, env = "CONNECT_OS_USER", default_value = "ec2-user")]
        os_user: String,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Share your instance with colleagues (their usernames) until a time: `--for 90m|8h|3d`.
    Share {
        instance: String,
        #[arg(required = true)]
        users: Vec<String>,
        /// How long (default: the deployment's, 8h unless your operator changed it).
        #[arg(long = "for")]
        duration: Option<String>,
    },
    /// End the share of your instance now.
    Unshare { instance: String },
}

/// Why `connect` stopped.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Usage, credentials, a missing program: exit 2.
    #[error("{0}")]
    Setup(String),
    /// Not yours, not running, access denied: exit 1.
    #[error("{0}")]
    Refused(String),
    /// An AWS answer that failed or cannot be read: exit 1.
    #[error("{0}")]
    Aws(String),
}

impl Problem {
    fn exit(&self) -> u8 {
        match self {
            Self::Setup(_) => 2,
            Self::Refused(_) | Self::Aws(_) => 1,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(problem) => {
            eprintln!("connect: {problem}");
            ExitCode::from(problem.exit())
        }
    }
}

struct Context {
    aws: Aws,
    caller: Caller,
    rules: ShareRules,
    region: Option<String>,
    hybrid_nodes: bool,
}

impl Context {
    async fn new(args: &Args) -> Result<Self, Problem> {
        let aws = Aws::load(args.profile.as_deref(), args.region.as_deref()).await;
        let rules = rules(
            &args.user_id_tag_key,
            &args.share_with_tag_key,
            &args.share_for_tag_key,
        )
        .map_err(Problem::Setup)?;
        let caller = aws.caller().await?;
        Ok(Self {
            aws,
            caller,
            rules,
            region: args.region.clone(),
            hybrid_nodes: args.hybrid_nodes,
        })
    }

    async fn regions(&self) -> Result<Vec<String>, Problem> {
        match &self.region {
            Some(region) => Ok(vec![region.clone()]),
            None => self.aws.regions().await,
        }
    }

    /// The instance, and how the caller reaches it; a refusal in one line when they cannot. A
    /// managed node outside EC2 is found only among the caller's own (its user-id tag).
    async fn reachable(&self, instance: &str) -> Result<(Found, Reach), Problem> {
        let regions = self.regions().await?;
        if is_node(instance) {
            return self.own_node(&regions, instance).await;
        }
        let Some(found) = self.aws.find(&regions, instance).await? else {
            return Err(Problem::Refused(format!(
                "{instance}: no such live instance in {} (or you may not describe it)",
                if regions.len() == 1 {
                    regions[0].clone()
                } else {
                    "any region enabled for the account".to_owned()
                }
            )));
        };
        match reach(&found.tags, &self.caller.user_id, &self.rules) {
            Some(reach) => Ok((found, reach)),
            None => Err(Problem::Refused(format!(
                "you cannot reach {instance}: {}. If it should be yours, ask your operator to run: doctor check {} {instance}",
                why_not(&found.tags, &self.caller.user_id, &self.rules),
                self.caller.username()
            ))),
        }
    }
}

impl Context {
    async fn own_node(&self, regions: &[String], node: &str) -> Result<(Found, Reach), Problem> {
        let key = &self.rules.user_id_key;
        let lookups = regions
            .iter()
            .map(|region| self.aws.nodes_in(region, &self.caller, key, Some(node)));
        for result in futures_util::future::join_all(lookups).await {
            if let Some(row) = result?.into_iter().next() {
                let found = Found {
                    region: row.region,
                    state: row.state,
                    tags: BTreeMap::new(),
                };
                return Ok((found, row.reach));
            }
        }
        Err(Problem::Refused(format!(
            "{node}: no managed node of yours in {} (its {key} tag must be your id; if it should be, ask your operator to run: doctor check {} {node})",
            if regions.len() == 1 {
                regions[0].clone()
            } else {
                "any region enabled for the account".to_owned()
            },
            self.caller.username()
        )))
    }
}

/// Whether `text` names a managed node outside EC2 (`mi-…`).
fn is_node(text: &str) -> bool {
    ManagedNodeId::parse(text).is_ok()
}

/// An instance id, or with `--hybrid-nodes` a managed node id, as the user typed it.
fn target_id(args: &Args, text: &str) -> Result<String, Problem> {
    if args.hybrid_nodes && is_node(text) {
        return Ok(text.to_owned());
    }
    instance_id(text)
}

/// Sharing, ssh, scp and sftp are for instances only: a node outside EC2 is refused in one line.
fn instances_only(args: &Args, text: &str, what: &str) -> Result<(), Problem> {
    if args.hybrid_nodes && is_node(text) {
        return Err(Problem::Refused(format!(
            "{text} is a managed node outside EC2: {what}"
        )));
    }
    Ok(())
}

fn instance_id(text: &str) -> Result<String, Problem> {
    InstanceId::parse(text)
        .map(|id| id.as_str().to_owned())
        .map_err(|reason| Problem::Setup(format!("{text:?} is not an instance id: {reason}")))
}

async fn run(args: Args) -> Result<i32, Problem> {
    let documents = Documents {
        shell: args.shell_document.clone(),
        prefix: args.document_prefix.clone(),
    };
    match &args.command {
        Command::Ls { json } => list(&Context::new(&args).await?, *json).await,
        Command::Share {
            instance,
            users,
            duration,
        } => share(&args, instance, users, duration.as_deref()).await,
        Command::Unshare { instance } => {
            instances_only(&args, instance, "sharing is for instances only")?;
            let instance = instance_id(instance)?;
            let context = Context::new(&args).await?;
            let found = owned(&context, &instance, "end a share of").await?;
            context
                .aws
                .end_share(&found.region, &instance, &context.rules)
                .await?;
            println!(
                "asked to end the share of {instance}: the product removes the guest slots and ends the guests' sessions within seconds"
            );
            Ok(0)
        }
        Command::Shell { instance } => {
            session(&args, instance, |cli, id| {
                Ok(cli.start_session(id, &documents.shell, None))
            })
            .await
        }
        Command::Forward {
            instance,
            port,
            local,
        } => {
            session(&args, instance, |cli, id| {
                Ok(cli.forward(id, &documents, *port, local.unwrap_or(*port)))
            })
            .await
        }
        Command::Ssh {
            instance,
            os_user,
            args: rest,
        } => secure_shell(&args, &documents, "ssh", instance, os_user, rest).await,
        Command::Scp {
            instance,
            os_user,
            args: rest,
        } => secure_shell(&args, &documents, "scp", instance, os_user, rest).await,
        Command::Sftp {
            instance,
            os_user,
            args: rest,
        } => secure_shell(&args, &documents, "sftp", instance, os_user, rest).await,
    }
}

async fn list(context: &Context, json: bool) -> Result<i32, Problem> {
    let regions = context.regions().await?;
    let lookups = regions.iter().map(|region| {
        context
            .aws
            .reachable_in(region, &context.caller, &context.rules)
    });
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = Vec::new();
    for result in futures_util::future::join_all(lookups).await {
        match result {
            Ok(found) => rows.extend(found),
            Err(problem) => failed.push(problem),
        }
    }
    if context.hybrid_nodes {
        let key = &context.rules.user_id_key;
        let lookups = regions
            .iter()
            .map(|region| context.aws.nodes_in(region, &context.caller, key, None));
        for result in futures_util::future::join_all(lookups).await {
            match result {
                Ok(found) => rows.extend(found),
                Err(problem) => failed.push(problem),
            }
        }
    }
    rows.sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
    if json {
        let out = serde_json::json!({"user_id": context.caller.user_id, "instances": rows});
        println!("{out}");
    } else if rows.is_empty() {
        println!(
            "{} owns no live instance, and none is shared with them, in {} region(s)",
            context.caller.username(),
            regions.len()
        );
    } else {
        print!("{}", table(&rows, chrono::Utc::now()));
    }
    // A region that could not be read is not a region with nothing in it.
    for problem in &failed {
        eprintln!("connect: {problem}");
    }
    Ok(i32::from(!failed.is_empty()))
}

/// The instance, when the caller owns it; a refusal naming who does otherwise.
async fn owned(context: &Context, instance: &str, what: &str) -> Result<Found, Problem> {
    let (found, reach) = context.reachable(instance).await?;
    match reach {
        Reach::Owner { .. } => Ok(found),
        Reach::Guest { owner, .. } => Err(Problem::Refused(format!(
            "only the owner can {what} {instance}: it is {owner}'s, shared with you"
        ))),
    }
}

async fn share(
    args: &Args,
    instance: &str,
    users: &[String],
    duration: Option<&str>,
) -> Result<i32, Problem> {
    instances_only(args, instance, "sharing is for instances only")?;
    let instance = instance_id(instance)?;
    let context = Context::new(args).await?;
    let with = users.join(" ");
    // The product's own reader of a request says what it would refuse, before anything is
    // written; the product checks again with the deployment's limits.
    let owner = own_user_id(&context.caller)?;
    let rules = &context.rules;
    let mut request = BTreeMap::from([(rules.share_with_key.clone(), with.clone())]);
    if let Some(duration) = duration {
        request.insert(rules.share_for_key.clone(), duration.to_owned());
    }
    if let Some(Err(reason)) = read_request(&request, &owner, rules) {
        return Err(Problem::Setup(format!("not shared: {}", reason.text)));
    }
    let found = owned(&context, &instance, "share").await?;
    context
        .aws
        .request_share(&found.region, &instance, &context.rules, &with, duration)
        .await?;
    println!(
        "asked to share {instance} with {with} for {}: the product gives each a guest slot within seconds (see `connect ls`); `connect unshare {instance}` ends it",
        duration.unwrap_or("the deployment's default (8h unless your operator changed it)")
    );
    Ok(0)
}

fn own_user_id(caller: &Caller) -> Result<UserId, Problem> {
    let unreadable = || {
        Problem::Aws(format!(
            "your user id {:?} is not <role-id>:<username>",
            caller.user_id
        ))
    };
    let (role, user) = caller.user_id.split_once(':').ok_or_else(unreadable)?;
    let role = RoleId::parse(role).map_err(|_| unreadable())?;
    let user = SessionName::parse(user).map_err(|_| unreadable())?;
    Ok(UserId::new(role, user))
}

/// The checks every session command makes before it runs anything: the programs, then the
/// instance (yours or shared with you, and running). The AWS CLI invocation for its region.
async fn prepare(
    args: &Args,
    instance: &str,
    programs: &[&str],
) -> Result<(String, Cli, String), Problem> {
    let instance = target_id(args, instance)?;
    let aws_cli = program("aws")?;
    program("session-manager-plugin")?;
    for name in programs {
        program(name)?;
    }
    let context = Context::new(args).await?;
    let (found, _) = context.reachable(&instance).await?;
    // a node outside EC2 has no EC2 state: its agent is online or not
    let ready = if is_node(&instance) {
        "Online"
    } else {
        "running"
    };
    if found.state != ready {
        return Err(Problem::Refused(format!(
            "{instance} is {}: a session needs it running",
            found.state
        )));
    }
    let cli = Cli {
        aws: aws_cli,
        profile: args.profile.clone(),
        region: found.region,
    };
    Ok((instance, cli, context.caller.username().to_owned()))
}

/// Run a session command; when it fails, say what to ask the operator.
async fn session(
    args: &Args,
    instance: &str,
    command: impl Fn(&Cli, &str) -> Result<Vec<String>, Problem>,
) -> Result<i32, Problem> {
    let (instance, cli, user) = prepare(args, instance, &[]).await?;
    let code = spawn(&cli.aws, &command(&cli, &instance)?)?;
    hint_on_failure(code, &user, &instance);
    Ok(code)
}

fn hint_on_failure(code: i32, user: &str, instance: &str) {
    if code != 0 {
        eprintln!(
            "connect: the session command exited with status {code}; if access was denied, ask your operator to run: doctor check {user} {instance}"
        );
    }
}

/// ssh, scp or sftp with a one-use key: generated now, pushed through EC2 Instance Connect
/// (valid 60 seconds), and used at once through the product's SSH document.
async fn secure_shell(
    args: &Args,
    documents: &Documents,
    tool: &str,
    instance: &str,
    os_user: &str,
    rest: &[String],
) -> Result<i32, Problem> {
    instances_only(
        args,
        instance,
        "EC2 Instance Connect cannot push a key to it; ssh with your own key on it through the deployment's SSH document (docs/users.md)",
    )?;
    let (instance, cli, user) = prepare(args, instance, &[tool, "ssh-keygen"]).await?;
    if tool == "scp" && !rest.iter().any(|a| a.starts_with(&format!("{instance}:"))) {
        return Err(Problem::Setup(format!(
            "scp: name the instance in a path, as {instance}:/home/{os_user}/file"
        )));
    }
    let dir = tempfile::Builder::new()
        .prefix("connect-")
        .tempdir()
        .map_err(|e| Problem::Setup(format!("cannot make a directory for the one-use key: {e}")))?;
    let key = dir.path().join("key");
    let keygen = [
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "connect one-use key",
        "-f",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([key.display().to_string()])
    .collect::<Vec<_>>();
    if spawn(&program("ssh-keygen")?, &keygen)? != 0 {
        return Err(Problem::Setup("ssh-keygen could not make a key".to_owned()));
    }
    let pushed = spawn(
        &cli.aws,
        &cli.push_key(&instance, os_user, &key.with_extension("pub")),
    )?;
    if pushed != 0 {
        hint_on_failure(pushed, &user, &instance);
        return Ok(pushed);
    }
    let mut command = ssh_options(&key, os_user, &cli.proxy_command(documents)?);
    match tool {
        "scp" => command.extend(rest.iter().cloned()),
        _ => {
            command.push(instance.clone());
            command.extend(rest.iter().cloned());
        }
    }
    let code = spawn(&program(tool)?, &command)?;
    hint_on_failure(code, &user, &instance);
    Ok(code)
}
